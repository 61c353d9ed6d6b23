"""Catalog behaviour on SQLite and PostgreSQL: galleries, identities, faces, search."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.index.backend import FAISS
from facedb.storage.catalog import Catalog, GalleryConfig, GallerySettings, NewFace
from facedb.storage.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from tests.store.conftest import BOTH_INDEXES, make_gallery, unit_vectors

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core


def faces(vectors: np.ndarray, crop_prefix: bytes = b"crop") -> list[NewFace]:
    return [
        NewFace(
            vector,
            box=(1.0, 2.0, 30.0, 40.0),
            landmarks=[[float(i), float(i + 1)] for i in range(5)],
            detector_score=0.9,
            quality={"sharpness": 0.5},
            liveness_score=0.99,
            source_sha256="cd" * 32,
            crop=crop_prefix + bytes([i % 256]),
        )
        for i, vector in enumerate(vectors)
    ]


def test_gallery_lifecycle(catalog: Catalog) -> None:
    name = make_gallery(catalog, settings=GallerySettings(0.4, 0.6, {"min_face": 40}))
    info = catalog.get_gallery(name)
    assert (info.dim, info.settings.match_threshold, info.settings.gate_policy) == (
        512,
        0.4,
        {"min_face": 40},
    )
    assert name in [gallery.name for gallery in catalog.list_galleries()]
    with pytest.raises(AlreadyExistsError):
        catalog.create_gallery(GalleryConfig(name, "m", "ab" * 32, 512))
    catalog.delete_gallery(name)
    with pytest.raises(NotFoundError):
        catalog.get_gallery(name)
    with pytest.raises(NotFoundError):
        catalog.search(name, unit_vectors(1), 1)


def test_add_and_search_finds_each_face_first(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    vectors = unit_vectors(40, seed=1)
    ids = []
    for person in range(10):
        ids += catalog.add_faces(
            name,
            f"person-{person}",
            faces(vectors[person * 4 : person * 4 + 4]),
            display_name=f"Person {person}",
            metadata={"n": person},
        )
    results = catalog.search(name, vectors, k=3)
    assert [hits[0].face_id for hits in results] == ids
    assert results[7][0].external_id == "person-1"
    assert results[7][0].display_name == "Person 1" and results[7][0].metadata == {"n": 1}
    assert results[7][0].score == pytest.approx(1.0, abs=1e-5)
    assert all(len(hits) == 3 for hits in results)
    # A threshold keeps only the near-identical hit (random 512-d vectors are ~orthogonal).
    assert all(len(hits) == 1 for hits in catalog.search(name, vectors, k=3, threshold=0.9))
    face = catalog.get_face(name, ids[5])
    assert face.external_id == "person-1" and face.has_crop and face.box == [1, 2, 30, 40]
    assert face.landmarks[4] == [4.0, 5.0] and face.quality == {"sharpness": 0.5}
    assert catalog.get_crop(name, ids[5]) == b"crop\x01"  # second face of its batch


def test_dimension_mismatch_writes_nothing(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    with pytest.raises(InvalidArgumentError, match="dimension 128"):
        catalog.add_faces(name, "alice", faces(unit_vectors(2, dim=128)))
    bad = [NewFace(unit_vectors(1)[0]), NewFace(unit_vectors(1, dim=511)[0])]
    with pytest.raises(InvalidArgumentError):
        catalog.add_faces(name, "alice", bad)
    with pytest.raises(InvalidArgumentError):
        catalog.add_faces(name, "alice", [NewFace(np.zeros(512, np.float32))])
    with pytest.raises(InvalidArgumentError):
        catalog.search(name, unit_vectors(1, dim=128), 1)
    with pytest.raises(NotFoundError):
        catalog.get_identity(name, "alice")
    assert catalog.face_ids(name) == [] and len(catalog.index_ids(name)) == 0


def test_faces_of_another_model_are_refused(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    other = NewFace(unit_vectors(1)[0], model_sha256="ef" * 32)
    with pytest.raises(ConflictError):
        catalog.add_faces(name, "bob", [other])
    assert catalog.face_ids(name) == []


def test_identities_paging_and_update(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    vectors = unit_vectors(7, seed=2)
    for i in range(7):
        catalog.add_faces(name, f"id-{i}", faces(vectors[i : i + 1]))
    catalog.add_faces(name, "id-3", faces(vectors[:1]), display_name="Three")
    seen, token = [], ""
    while True:
        page, token = catalog.list_identities(name, page_size=3, page_token=token)
        seen += page
        if not token:
            break
    assert [identity.external_id for identity in seen] == [f"id-{i}" for i in range(7)]
    assert len(seen[3].face_ids) == 2 and seen[3].display_name == "Three"
    updated = catalog.update_identity(name, "id-3", metadata={"team": "red"})
    assert updated.display_name == "Three" and updated.metadata == {"team": "red"}
    with pytest.raises(NotFoundError):
        catalog.update_identity(name, "nobody", display_name="x")
    with pytest.raises(InvalidArgumentError):
        catalog.list_identities(name, page_token="not-a-token")


@pytest.mark.parametrize(
    "token",
    [
        "99999999999999999999999",
        "-1",
        " 5",
        "٥",
        "5",
        "0",
        "cDE6MTox=",
        "cDE6MTo5OTk5OTk5OTk5OTk5OTk5OTk5OQ",
        "x" * 65,
    ],
)
def test_page_tokens_are_opaque_and_checked(catalog: Catalog, token: str) -> None:
    name = make_gallery(catalog)
    catalog.add_faces(name, "only", faces(unit_vectors(1, seed=3)))
    with pytest.raises(InvalidArgumentError, match="page token"):
        catalog.list_identities(name, page_size=1, page_token=token)


def test_a_page_token_is_bound_to_its_gallery(catalog: Catalog) -> None:
    first, second = make_gallery(catalog), make_gallery(catalog)
    for gallery in (first, second):
        for i in range(2):
            catalog.add_faces(gallery, f"id-{i}", faces(unit_vectors(1, seed=10 + i)))
    _, token = catalog.list_identities(first, page_size=1)
    assert token and not token.isdigit()
    with pytest.raises(InvalidArgumentError, match="another gallery"):
        catalog.list_identities(second, page_size=1, page_token=token)
    with pytest.raises(InvalidArgumentError, match="page size"):
        catalog.list_identities(first, page_size=10_001)


def test_deletion_is_complete(catalog: Catalog, index_dir, index_backend: str) -> None:
    name = make_gallery(catalog)
    vectors = unit_vectors(6, seed=3)
    kept = catalog.add_faces(name, "keep", faces(vectors[:3]))
    doomed = catalog.add_faces(name, "doomed", faces(vectors[3:], crop_prefix=b"secret"))
    catalog.flush()  # a FAISS snapshot holding the doomed faces is on disk now
    # Milvus keeps no vector in the index directory (only a manifest naming the collection).
    assert _files_contain(index_dir, vectors[3].tobytes()) == (index_backend == FAISS)

    assert catalog.delete_identity(name, "doomed") == 3
    assert all(hits[0].face_id in kept for hits in catalog.search(name, vectors[3:], k=1))
    assert catalog.face_ids(name) == kept
    assert sorted(catalog.index_ids(name)) == kept
    with pytest.raises(NotFoundError):
        catalog.get_crop(name, doomed[0])
    with pytest.raises(NotFoundError):
        catalog.get_identity(name, "doomed")
    assert not _files_contain(index_dir, vectors[3].tobytes())  # snapshot gone at once
    catalog.flush()
    assert not _files_contain(index_dir, vectors[3].tobytes())  # and not rewritten

    catalog.delete_face(name, kept[0])
    with pytest.raises(NotFoundError):
        catalog.delete_face(name, kept[0])
    assert catalog.get_identity(name, "keep").face_ids == tuple(kept[1:])
    assert catalog.search(name, vectors[:1], k=1)[0][0].face_id != kept[0]


def test_reopen_serves_the_same_faces(database_url: str, index_dir, open_catalog) -> None:
    vectors = unit_vectors(20, seed=4)
    with open_catalog(database_url, index_dir, snapshot_interval=None) as first:
        name = make_gallery(first)
        ids = first.add_faces(name, "a", faces(vectors[:10]))
        first.flush()
        ids += first.add_faces(name, "b", faces(vectors[10:]))  # after the snapshot
        first.delete_face(name, ids[0])
    with open_catalog(database_url, index_dir, snapshot_interval=None) as second:
        hits = second.search(name, vectors, k=1)
        assert [row[0].face_id for row in hits[1:]] == ids[1:]
        assert hits[0][0].face_id != ids[0]
        assert sorted(second.index_ids(name)) == ids[1:]


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivf_sq8", "hnsw"])
def test_every_index_kind_searches_and_deletes(catalog: Catalog, kind: str) -> None:
    name = make_gallery(catalog, dim=32, index_kind=kind)
    vectors = unit_vectors(1100, dim=32, seed=5)
    ids = catalog.add_faces(name, "many", [NewFace(vector) for vector in vectors])
    catalog.wait_for_maintenance()  # 1100 vectors: enough to train IVF lists
    assert _index_kind(catalog, name) == kind
    top = [hits[0].face_id for hits in catalog.search(name, vectors[:200], k=5)]
    assert np.mean(np.asarray(top) == np.asarray(ids[:200])) >= 0.97
    for face_id in ids[:20]:
        catalog.delete_face(name, face_id)
    found = {hit.face_id for hits in catalog.search(name, vectors[:20], k=5) for hit in hits}
    assert not found & set(ids[:20])
    assert sorted(catalog.index_ids(name)) == ids[20:]


def _index_kind(catalog: Catalog, name: str) -> str:
    entry = next(entry for entry in catalog.stats()["galleries"] if entry["name"] == name)
    return entry["index_kind"]


def _files_contain(directory, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in directory.rglob("*") if path.is_file())
