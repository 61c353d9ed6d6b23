"""ivf_pq: the default above AUTO_IVF_MAX; removal without in-place support in the refine part."""

from __future__ import annotations

import faiss
import numpy as np

from facedb.index.manager import GalleryIndex, GalleryRef
from facedb.index.vector_index import (
    IndexKind,
    IndexParams,
    VectorIndex,
    _pq_parts,
    choose_kind,
)
from tests.store.conftest import unit_vectors


def test_auto_tiers_by_size() -> None:
    params = IndexParams(flat_max=1_000, ivf_max=5_000)
    assert choose_kind(1_000, "auto", params) is IndexKind.FLAT
    assert choose_kind(5_000, "auto", params) is IndexKind.IVF
    assert choose_kind(5_001, "auto", params) is IndexKind.IVF_PQ


def test_removal_unlists_and_scrubs(tmp_path) -> None:
    vectors = unit_vectors(2000, dim=64, seed=51)
    index = VectorIndex.build(IndexKind.IVF_PQ, 64, np.arange(2000), vectors)
    assert index.remove(np.array([7, 8])) == 2
    _, found = index.search(vectors[7:9], 10)
    assert not np.isin(found, [7, 8]).any()
    _, found = index.search(vectors[9:109], 1)
    assert np.mean(found[:, 0] == np.arange(9, 109)) >= 0.99  # exact re-ranking
    index.write(tmp_path / "index.faiss")
    stored = (tmp_path / "index.faiss").read_bytes()
    halves = vectors.astype(np.float16)  # the default re-rank store keeps float16
    assert halves[7].tobytes() not in stored and halves[9].tobytes() in stored
    assert index.tombstones == {7, 8}


def test_float32_rerank_store_scrubs_too(tmp_path) -> None:
    vectors = unit_vectors(2000, dim=64, seed=53)
    params = IndexParams(pq_rerank="flat")
    index = VectorIndex.build(IndexKind.IVF_PQ, 64, np.arange(2000), vectors, params)
    index.remove(np.array([5]))
    index.write(tmp_path / "index.faiss")
    stored = (tmp_path / "index.faiss").read_bytes()
    assert vectors[5].tobytes() not in stored and vectors[6].tobytes() in stored
    _, found = index.search(vectors[6:106], 1)
    assert np.mean(found[:, 0] == np.arange(6, 106)) >= 0.99


def test_bulk_add_assigns_like_the_graph() -> None:
    """A bulk add (exact centroid scan) and one-by-one adds (HNSW walk) find the same faces;
    the graph is the coarse quantizer again afterwards."""
    vectors = unit_vectors(9000, dim=64, seed=54)
    bulk = VectorIndex.build(IndexKind.IVF_PQ, 64, np.arange(9000), vectors)
    trickled = VectorIndex.build(IndexKind.IVF_PQ, 64, np.arange(4000), vectors[:4000])
    for face in range(4000, 9000, 1000):
        trickled.add(np.arange(face, face + 1000), vectors[face : face + 1000])
    assert type(faiss.downcast_index(_pq_parts(bulk.index)[1].quantizer)) is faiss.IndexHNSWFlat
    _, found_bulk = bulk.search(vectors[4000:4300], 1)
    _, found_trickled = trickled.search(vectors[4000:4300], 1)
    assert np.mean(found_bulk[:, 0] == np.arange(4000, 4300)) >= 0.99
    assert np.mean(found_bulk[:, 0] == found_trickled[:, 0]) >= 0.99


def test_tier_hysteresis_and_tombstone_rebuild(tmp_path) -> None:
    params = IndexParams(flat_max=500, ivf_max=1_500)
    vectors = unit_vectors(2000, dim=32, seed=52)
    index = VectorIndex.build(IndexKind.IVF_PQ, 32, np.arange(2000), vectors, params)
    ref = GalleryRef(1, "u", "g", "m", 32, "auto")
    gallery = GalleryIndex(ref, tmp_path, index, watermark=0)
    assert gallery.needs_rebuild() is None
    gallery.apply(None, removed=np.arange(150))  # 7.5 % tombstones, 1850 live
    assert gallery.needs_rebuild() is None
    gallery.apply(None, removed=np.arange(150, 250))  # 12.5 %
    assert "removed vectors" in (gallery.needs_rebuild() or "")
    shrunk = VectorIndex.build(IndexKind.IVF_PQ, 32, np.arange(1000), vectors[:1000], params)
    gallery.replace(ref, shrunk, 0)
    assert gallery.needs_rebuild() is None  # 1000 > 1500 / 2: stays ivf_pq
    gallery.apply(None, removed=np.arange(260, 1000))
    assert gallery.needs_rebuild() is not None
