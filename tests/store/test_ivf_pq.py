"""ivf_pq: the default above AUTO_IVF_MAX; removal without in-place support in the refine part."""

from __future__ import annotations

import numpy as np

from facedb.index.manager import GalleryIndex, GalleryRef
from facedb.index.vector_index import IndexKind, IndexParams, VectorIndex, choose_kind
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
    assert vectors[7].tobytes() not in stored and vectors[9].tobytes() in stored
    assert index.tombstones == {7, 8}


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
