"""Reindex: rebuild as another kind, or re-embed stored crops with another "model".

The other model is a real deterministic function of the crop bytes (a fixed random
projection of the pixels), so faces of one identity (noisy copies of one base crop) land
near each other in the new space and far from other identities.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from facedb.storage.catalog import Catalog, ModelInfo, NewFace
from facedb.storage.errors import ConflictError, InvalidArgumentError
from tests.store import test_write_races as races
from tests.store.conftest import BOTH_INDEXES, make_gallery, unit_vectors

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core

PIXELS = 16 * 16 * 3
NEW_DIM = 64
PROJECTION = np.random.default_rng(31).standard_normal((PIXELS, NEW_DIM)).astype(np.float32)
NEW_MODEL = ModelInfo("projection-64", hashlib.sha256(PROJECTION.tobytes()).hexdigest(), NEW_DIM)
PEOPLE, FACES_EACH = 12, 3


def project(crops: list[bytes]) -> np.ndarray:
    pixels = np.stack([np.frombuffer(crop, np.uint8) for crop in crops]).astype(np.float32)
    vectors = (pixels - 127.5) @ PROJECTION
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def crops_of(person: int, rng: np.random.Generator) -> list[bytes]:
    base = np.random.default_rng(1000 + person).integers(0, 256, PIXELS)
    noisy = [np.clip(base + rng.integers(-20, 21, PIXELS), 0, 255) for _ in range(FACES_EACH)]
    return [crop.astype(np.uint8).tobytes() for crop in noisy]


def enroll(catalog: Catalog, name: str) -> dict[str, list[tuple[int, bytes]]]:
    rng = np.random.default_rng(32)
    enrolled = {}
    old_vectors = unit_vectors(PEOPLE * FACES_EACH, seed=33)  # the "old model"
    for person in range(PEOPLE):
        crops = crops_of(person, rng)
        vectors = old_vectors[person * FACES_EACH : (person + 1) * FACES_EACH]
        faces = [NewFace(v, crop=c) for v, c in zip(vectors, crops, strict=True)]
        ids = catalog.add_faces(
            name, f"p{person}", faces, display_name=f"Person {person}", metadata={"person": person}
        )
        enrolled[f"p{person}"] = list(zip(ids, crops, strict=True))
    return enrolled


def test_reembedding_keeps_identities_and_searches_the_new_space(
    database_url, index_dir, caplog, open_catalog
) -> None:
    catalog = open_catalog(database_url, index_dir, snapshot_interval=None)
    name = make_gallery(catalog)
    enrolled = enroll(catalog, name)
    old_probe = unit_vectors(1, seed=33)  # face 0 of p0 in the old space
    late: list[int] = []
    calls: list[tuple[int, int]] = []

    def embed_while_serving(crops: list[bytes]) -> np.ndarray:
        if not late:  # during the slow part the old index still serves, writes still work
            assert catalog.search(name, old_probe, k=1)[0][0].face_id == enrolled["p0"][0][0]
            late_crop = crops_of(0, np.random.default_rng(34))[0]
            late.extend(
                catalog.add_faces(
                    name, "p0", [NewFace(unit_vectors(1, seed=35)[0], crop=late_crop)]
                )
            )
            enrolled["p0"].append((late[0], late_crop))
        return project(crops)

    info = catalog.reindex(
        name,
        model=NEW_MODEL,
        embed_crops=embed_while_serving,
        batch_size=5,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (info.model_name, info.model_sha256, info.dim) == (NEW_MODEL.name, NEW_MODEL.sha256, 64)
    assert calls[-1] == (PEOPLE * FACES_EACH, PEOPLE * FACES_EACH)
    _assert_identities_kept(catalog, name, enrolled)
    _assert_new_space_search(catalog, name, enrolled)
    with pytest.raises(InvalidArgumentError):
        catalog.search(name, old_probe, k=1)  # 512-d queries no longer fit
    with pytest.raises(InvalidArgumentError):
        catalog.add_faces(name, "p0", [NewFace(old_probe[0])])
    catalog.close()

    with caplog.at_level(logging.INFO, logger="facedb.index"):
        reopened = open_catalog(database_url, index_dir, snapshot_interval=None)
        _assert_new_space_search(reopened, name, enrolled)  # from the new snapshot
    assert "rebuilding" not in caplog.text
    reopened.close()


def _assert_identities_kept(catalog, name, enrolled) -> None:
    for external_id, faces in enrolled.items():
        identity = catalog.get_identity(name, external_id)
        assert identity.face_ids == tuple(face_id for face_id, _ in faces)
        person = int(external_id[1:])
        assert identity.display_name == f"Person {person}"
        assert identity.metadata == {"person": person}
        assert catalog.get_face(name, faces[0][0]).model_sha256 == NEW_MODEL.sha256


def _assert_new_space_search(catalog, name, enrolled) -> None:
    for external_id, faces in enrolled.items():
        hits = catalog.search(name, project([crop for _, crop in faces]), k=len(faces))
        for (face_id, _), row in zip(faces, hits, strict=True):
            assert row[0].face_id == face_id and row[0].score > 0.999
            assert {hit.external_id for hit in row} == {external_id}


def test_reembedding_needs_every_crop(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    catalog.add_faces(name, "a", [NewFace(unit_vectors(1)[0], crop=b"x" * PIXELS)])
    catalog.add_faces(name, "b", [NewFace(unit_vectors(1, seed=1)[0])])  # no crop kept
    with pytest.raises(ConflictError, match="no stored crop"):
        catalog.reindex(name, model=NEW_MODEL, embed_crops=project)
    assert catalog.get_gallery(name).model_name == "test-model"
    assert catalog.search(name, unit_vectors(1), k=1)[0][0].external_id == "a"


def test_galleries_without_crops_store_none(catalog: Catalog) -> None:
    name = make_gallery(catalog, store_crops=False)
    (face_id,) = catalog.add_faces(name, "a", [NewFace(unit_vectors(1)[0], crop=b"secret")])
    assert catalog.get_crop(name, face_id) is None
    assert not catalog.get_face(name, face_id).has_crop


def test_rebuild_as_another_kind_is_remembered(database_url, index_dir, open_catalog) -> None:
    with open_catalog(database_url, index_dir, snapshot_interval=None) as catalog:
        name = make_gallery(catalog, dim=32)
        vectors = unit_vectors(1200, dim=32, seed=36)
        ids = catalog.add_faces(name, "many", [NewFace(v) for v in vectors])
        catalog.reindex(name, kind="hnsw")
        assert catalog.get_gallery(name).index_kind == "hnsw"
    with open_catalog(database_url, index_dir, snapshot_interval=None) as catalog:
        top = [hits[0].face_id for hits in catalog.search(name, vectors[:100], k=1)]
        assert np.mean(np.equal(top, ids[:100])) >= 0.98
        entry = next(g for g in catalog.stats()["galleries"] if g["name"] == name)
        assert entry["index_kind"] == "hnsw"
        catalog.reindex(name, kind="auto")  # back to the size rule: flat at this size
        entry = next(g for g in catalog.stats()["galleries"] if g["name"] == name)
        assert entry["index_kind"] == "flat" and catalog.get_gallery(name).index_kind is None


def test_another_process_switches_model_and_kind_in_the_background(
    database_url: str, tmp_path: Path, open_catalog
) -> None:
    """A model switch and an index-kind change by one catalog reach another catalog on the
    same database through catch-up: the old index (and model) serves until the background
    switch installs the new one, whose ids are SQL's; a write meanwhile waits for it."""
    server = open_catalog(database_url, tmp_path / "server", snapshot_interval=None)
    other = open_catalog(database_url, tmp_path / "other", snapshot_interval=None)
    name = make_gallery(server)
    rng = np.random.default_rng(72)
    crops = [races.random_crop(rng) for _ in range(20)]
    for number, crop in enumerate(crops):
        server.add_faces(name, f"p{number}", [races.old_face(crop)])

    other.reindex(name, kind="hnsw")
    assert _entry(server, name)["index_kind"] == "flat"
    assert server.catch_up(name) == 0  # noticed: the rebuild runs in the background
    server.wait_for_maintenance()
    assert _entry(server, name)["index_kind"] == "hnsw"

    seen: list[str] = []

    def embed_while_watching(batch: list[bytes]) -> np.ndarray:
        # Before the switch commits, `server` still serves the old model.
        seen.append(server.serving_model(name))
        return races.embed(races.NEW_PROJECTION, batch)

    other.reindex(name, model=races.NEW_MODEL, embed_crops=embed_while_watching, batch_size=8)
    assert seen and set(seen) == {races.OLD_MODEL.sha256}
    # Not caught up yet: the old index answers old-model probes.
    (top,) = server.search(name, races.embed(races.OLD_PROJECTION, crops[:1]), k=1)[0]
    assert top.external_id == "p0"
    # A new-model write meanwhile waits for this process's switch, then goes in.
    late = races.random_crop(rng)
    vector = races.embed(races.NEW_PROJECTION, [late])[0]
    new_face = NewFace(vector, crop=late, model_sha256=races.NEW_MODEL.sha256)
    server.add_faces(name, "late", [new_face])
    server.wait_for_maintenance()
    assert server.serving_model(name) == races.NEW_MODEL.sha256
    hits = server.search(name, races.embed(races.NEW_PROJECTION, [*crops, late]), k=1)
    expected = [f"p{n}" for n in range(len(crops))] + ["late"]
    assert [row[0].external_id for row in hits] == expected
    assert sorted(server.index_ids(name).tolist()) == server.face_ids(name)
    entry = _entry(server, name)
    assert (entry["index_kind"], entry["index_model_sha256"]) == ("hnsw", races.NEW_MODEL.sha256)
    other.close()
    server.close()


def _entry(catalog: Catalog, name: str) -> dict:
    return next(g for g in catalog.stats()["galleries"] if g["name"] == name)
