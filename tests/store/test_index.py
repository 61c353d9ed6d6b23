"""Index internals: kinds chosen by size, HNSW removal, snapshot round trips."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.index.snapshot import read_snapshot, write_snapshot
from facedb.index.vector_index import IndexKind, IndexParams, VectorIndex, choose_kind
from facedb.storage.catalog import Catalog, NewFace
from tests.store.conftest import make_gallery, unit_vectors


def test_kind_follows_size_unless_requested() -> None:
    params = IndexParams(flat_max=50_000)
    assert choose_kind(10, "auto", params) is IndexKind.FLAT
    assert choose_kind(50_001, "auto", params) is IndexKind.IVF
    assert choose_kind(10, "hnsw", params) is IndexKind.HNSW
    assert choose_kind(10, "ivf", params) is IndexKind.FLAT  # too few points for k-means
    assert choose_kind(5000, "ivf_sq8", params) is IndexKind.IVF_SQ8


@pytest.mark.parametrize("kind", list(IndexKind))
def test_snapshot_round_trip_keeps_removals(tmp_path, kind: IndexKind) -> None:
    vectors = unit_vectors(1200, dim=32, seed=41)
    ids = np.arange(100, 1300)
    index = VectorIndex.build(kind, 32, ids, vectors)
    index.remove(ids[:10])
    write_snapshot(tmp_path, index, gallery_uid="u", model_sha256="m", watermark=7)
    loaded, manifest = read_snapshot(
        tmp_path, gallery_uid="u", model_sha256="m", dim=32, params=IndexParams()
    )
    assert manifest.watermark == 7 and manifest.kind == kind.value
    assert loaded.ids().tolist() == ids[10:].tolist()
    _, found = loaded.search(vectors[:10], 5)
    assert not np.isin(found, ids[:10]).any()
    _, found = loaded.search(vectors[10:60], 1)
    assert np.mean(found[:, 0] == ids[10:60]) >= 0.96


def test_hnsw_removal_scrubs_the_stored_vector(tmp_path) -> None:
    vectors = unit_vectors(300, dim=32, seed=42)
    index = VectorIndex.build(IndexKind.HNSW, 32, np.arange(300), vectors)
    index.remove(np.array([5]))
    index.write(tmp_path / "index.faiss")
    assert vectors[5].tobytes() not in (tmp_path / "index.faiss").read_bytes()
    assert vectors[6].tobytes() in (tmp_path / "index.faiss").read_bytes()
    _, found = index.search(vectors[5:6], 10)
    assert 5 not in found


def test_auto_moves_to_ivf_when_large_and_back_when_small(database_url, index_dir) -> None:
    params = IndexParams(flat_max=1000)
    with Catalog.open(database_url, index_dir, params=params, snapshot_interval=None) as catalog:
        name = make_gallery(catalog, dim=32)
        vectors = unit_vectors(1300, dim=32, seed=43)
        ids = []
        for start in range(0, 1300, 100):
            batch = [NewFace(v) for v in vectors[start : start + 100]]
            ids += catalog.add_faces(name, f"p{start}", batch)
        catalog.wait_for_maintenance()
        assert _kind(catalog, name) == "ivf"
        top = [hits[0].face_id for hits in catalog.search(name, vectors[:200], k=1)]
        assert np.mean(np.equal(top, ids[:200])) >= 0.97
        for start in range(0, 900, 100):
            catalog.delete_identity(name, f"p{start}")
        catalog.wait_for_maintenance()
        assert _kind(catalog, name) == "flat"
        assert sorted(catalog.index_ids(name).tolist()) == ids[900:]


def test_hnsw_tombstones_trigger_a_rebuild(database_url, index_dir) -> None:
    with Catalog.open(database_url, index_dir, snapshot_interval=None) as catalog:
        name = make_gallery(catalog, dim=32, index_kind="hnsw")
        vectors = unit_vectors(200, dim=32, seed=44)
        ids = catalog.add_faces(name, "a", [NewFace(v) for v in vectors])
        for face_id in ids[:30]:  # 15 % of the graph
            catalog.delete_face(name, face_id)
        catalog.wait_for_maintenance()
        gallery_index = catalog._live.get(name)
        assert gallery_index.kind is IndexKind.HNSW
        index = gallery_index._index
        assert index.index.ntotal < 200  # the graph was rebuilt without the dead vectors
        assert index.tombstone_ratio <= 0.1 and len(index.tombstones) < 30
        assert sorted(catalog.index_ids(name).tolist()) == ids[30:]


def _kind(catalog: Catalog, name: str) -> str:
    return next(g["index_kind"] for g in catalog.stats()["galleries"] if g["name"] == name)
