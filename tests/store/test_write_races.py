"""Writes racing a model switch or a gallery's deletion, with two catalogs on one database.

Two `Catalog` objects are what two server processes are to each other: separate indexes,
separate in-process locks, one SQL database. Only SQL locks order them.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from facedb.storage.catalog import Catalog, GalleryConfig, ModelInfo, NewFace
from facedb.storage.errors import ConflictError, NotFoundError
from tests.store.conftest import make_gallery, unit_vectors

PIXELS = 16 * 16 * 3
DIM = 512
# Two "models": fixed random projections of the crop's pixels, same dimension, so a vector
# stored under the wrong model's label fits the index and is silently never found.
OLD_PROJECTION = np.random.default_rng(41).standard_normal((PIXELS, DIM)).astype(np.float32)
NEW_PROJECTION = np.random.default_rng(42).standard_normal((PIXELS, DIM)).astype(np.float32)
OLD_MODEL = ModelInfo("test-model", "ab" * 32, DIM)  # what make_gallery creates
NEW_MODEL = ModelInfo("projection", hashlib.sha256(NEW_PROJECTION.tobytes()).hexdigest(), DIM)
ENROLLERS = 4
ENROLLS_AFTER_SWITCH = 3


def embed(projection: np.ndarray, crops: list[bytes]) -> np.ndarray:
    pixels = np.stack([np.frombuffer(crop, np.uint8) for crop in crops]).astype(np.float32)
    vectors = (pixels - 127.5) @ projection
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def random_crop(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, PIXELS, dtype=np.uint8).tobytes()


def old_face(crop: bytes) -> NewFace:
    return NewFace(embed(OLD_PROJECTION, [crop])[0], crop=crop, model_sha256=OLD_MODEL.sha256)


class Enrollments:
    """What the enrolling threads saw: acknowledged faces, refusals, unexpected errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[int, bytes] = {}
        self.acknowledged_after_switch: list[int] = []
        self.refused = 0
        self.errors: list[str] = []


def test_reindex_to_another_model_racing_enrolls(database_url: str, tmp_path: Path) -> None:
    """A server keeps enrolling with the old model while another process re-embeds the
    gallery: every face is stored with the vector of the model its label names, and
    every acknowledged face is found after a restart."""
    server = Catalog.open(database_url, tmp_path / "server", snapshot_interval=None)
    name = make_gallery(server)
    seen = Enrollments()
    rng = np.random.default_rng(43)
    for number in range(60):
        crop = random_crop(rng)
        (face_id,) = server.add_faces(name, f"pre-{number}", [old_face(crop)])
        seen.acknowledged[face_id] = crop
    switched = threading.Event()
    threads = [
        threading.Thread(target=_enroll_until_after, args=(server, name, seen, switched, w))
        for w in range(ENROLLERS)
    ]
    threads.append(threading.Thread(target=_reindex, args=(database_url, tmp_path, name, switched)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.close()

    assert seen.errors == []
    assert switched.is_set()
    stored = _stored_faces(database_url, name)
    assert set(stored) == set(seen.acknowledged)
    mislabelled = [
        face_id
        for face_id, (model_sha256, vector, crop) in stored.items()
        if model_sha256 != NEW_MODEL.sha256
        or not np.allclose(vector, embed(NEW_PROJECTION, [crop])[0], atol=1e-5)
    ]
    assert mislabelled == [], "stored vectors that are not the labelled model's"
    with Catalog.open(database_url, tmp_path / "restarted", snapshot_interval=None) as restarted:
        ids = list(seen.acknowledged)
        probes = embed(NEW_PROJECTION, [seen.acknowledged[face_id] for face_id in ids])
        top = [hits[0] for hits in restarted.search(name, probes, k=1)]
        assert [hit.face_id for hit in top] == ids
        assert min(hit.score for hit in top) > 0.999
    # Enrolled with the old model after the switch: refused (FAILED_PRECONDITION), not stored.
    assert seen.acknowledged_after_switch == []
    assert seen.refused >= ENROLLERS * ENROLLS_AFTER_SWITCH


def _enroll_until_after(
    server: Catalog, name: str, seen: Enrollments, switched: threading.Event, worker: int
) -> None:
    rng = np.random.default_rng(100 + worker)
    number = after = 0
    while after < ENROLLS_AFTER_SWITCH:
        done = switched.is_set()  # read before the call: the call starts after the switch
        crop = random_crop(rng)
        try:
            (face_id,) = server.add_faces(name, f"w{worker}-{number}", [old_face(crop)])
            with seen.lock:
                seen.acknowledged[face_id] = crop
                if done:
                    seen.acknowledged_after_switch.append(face_id)
        except ConflictError:
            with seen.lock:
                seen.refused += 1
        except Exception as error:  # anything else fails the test
            with seen.lock:
                seen.errors.append(repr(error))
            return
        number += 1
        after += done


def _reindex(database_url: str, tmp_path: Path, name: str, switched: threading.Event) -> None:
    with Catalog.open(database_url, tmp_path / "tool", snapshot_interval=None) as tool:
        tool.reindex(
            name,
            model=NEW_MODEL,
            embed_crops=lambda crops: embed(NEW_PROJECTION, crops),
            batch_size=8,
        )
    switched.set()


def _stored_faces(database_url: str, name: str) -> dict[int, tuple[str, np.ndarray, bytes]]:
    """face id -> (model sha256, embedding, crop), read straight from SQL."""
    engine = sa.create_engine(database_url)
    query = sa.text(
        "SELECT f.id, f.model_sha256, f.embedding, f.crop FROM faces f "
        "JOIN galleries g ON g.id = f.gallery_id WHERE g.name = :name"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"name": name}).all()
    finally:
        engine.dispose()
    return {
        int(row[0]): (row[1], np.frombuffer(row[2], dtype="<f4"), bytes(row[3])) for row in rows
    }


ROUNDS = 8
USERS = 4


def test_delete_gallery_racing_its_first_use(database_url: str, tmp_path: Path) -> None:
    """Threads load a gallery (first use) while another deletes it: nothing of it stays on
    disk, and a gallery created again under the name works at once."""
    writer = Catalog.open(database_url, tmp_path / "writer", snapshot_interval=None)
    server_dir = tmp_path / "server"
    server = Catalog.open(database_url, server_dir, snapshot_interval=None)
    vectors = unit_vectors(300, seed=51)
    deleted_uids = []
    for _ in range(ROUNDS):
        name = make_gallery(writer)  # filled elsewhere: not yet loaded by `server`
        writer.add_faces(name, "p", [NewFace(vector) for vector in vectors])
        deleted_uids.append(writer.get_gallery(name).uid)
        errors = _race_deletion(server, name)
        assert errors == []
        server.create_gallery(GalleryConfig(name, OLD_MODEL.name, OLD_MODEL.sha256, DIM))
        (face_id,) = server.add_faces(name, "again", [NewFace(vectors[0])])
        assert server.search(name, vectors[:1], k=1)[0][0].face_id == face_id
        server.flush()
        assert not (server_dir / deleted_uids[-1]).exists()
    server.close()
    writer.close()
    assert [uid for uid in deleted_uids if (server_dir / uid).exists()] == []


def _race_deletion(server: Catalog, name: str) -> list[str]:
    start = threading.Barrier(USERS + 1)
    errors: list[str] = []

    def use() -> None:
        start.wait()
        for _ in range(3):
            try:
                server.get_identity(name, "p")
                server.delete_face(name, 10**12)  # loads the index, then finds no such face
            except NotFoundError:
                pass
            except Exception as error:  # anything else fails the test
                errors.append(repr(error))

    def delete() -> None:
        start.wait()
        server.delete_gallery(name)

    threads = [threading.Thread(target=use) for _ in range(USERS)]
    threads.append(threading.Thread(target=delete))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_search_sees_what_another_process_wrote(database_url: str, tmp_path: Path) -> None:
    """Faces another process enrolled or removed, and a re-embedding it did, are what the
    next search sees, with no write in between."""
    server = Catalog.open(database_url, tmp_path / "server", snapshot_interval=None)
    other = Catalog.open(database_url, tmp_path / "other", snapshot_interval=None)
    name = make_gallery(server)
    rng = np.random.default_rng(71)
    crops = [random_crop(rng) for _ in range(3)]
    (first,) = server.add_faces(name, "a", [old_face(crops[0])])
    assert server.search(name, embed(OLD_PROJECTION, crops[:1]), k=1)[0][0].face_id == first

    (second,) = other.add_faces(name, "b", [old_face(crops[1])])
    other.delete_face(name, first)
    hits = server.search(name, embed(OLD_PROJECTION, crops[:2]), k=1)
    assert [row[0].face_id if row else None for row in hits] == [second, second]
    assert server.index_ids(name).tolist() == [second]

    other.reindex(name, model=NEW_MODEL, embed_crops=lambda batch: embed(NEW_PROJECTION, batch))
    # The next search starts the switch in the background and is answered by the old index.
    (top,) = server.search(name, embed(OLD_PROJECTION, crops[1:2]), k=1)[0]
    assert top.face_id == second and top.score > 0.999
    server.wait_for_maintenance()
    assert server.serving_model(name) == NEW_MODEL.sha256
    (top,) = server.search(name, embed(NEW_PROJECTION, crops[1:2]), k=1)[0]
    assert top.face_id == second and top.score > 0.999
    other.close()
    server.close()
