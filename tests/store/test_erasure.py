"""Right to be forgotten on disk: once DeleteIdentity / DeleteFace returns, no file in the data
directory still holds the deleted face's crop PNG or embedding (SQLite's WAL included)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facedb.engine import Engine, EnrollItem, open_engine
from tests.paths import LFW
from tests.service.support import server_settings

os.environ.setdefault("FACEDB_ORT_THREADS", "1")


def _photo(name: str, number: int) -> bytes:
    return (LFW / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def _samples(blob: bytes, width: int = 48) -> list[bytes]:
    """A few chunks from across `blob`: each would be found if the bytes were still on disk."""
    starts = np.linspace(len(blob) // 8, len(blob) - width - 1, 5).astype(int)
    return [blob[start : start + width] for start in starts]


def _files_holding(root: Path, chunks: list[bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.name}@chunk{i}" for i, chunk in enumerate(chunks) if chunk in data]
    return found


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    data_dir = tmp_path / "data"
    engine = open_engine(server_settings(data_dir))
    engine.create_gallery("g")
    yield engine, data_dir
    engine.close()


def _enroll(engine: Engine, external_id: str, photo: bytes) -> tuple[int, list[bytes]]:
    result = engine.enroll(EnrollItem("g", external_id, [photo], allow_multiple_faces=True))
    face_id = result.outcomes[0].face_id
    assert face_id is not None
    crop = engine.catalog.get_crop("g", face_id)
    assert crop is not None
    (embedding,) = engine.catalog.identity_embeddings("g", external_id)
    return face_id, _samples(crop) + _samples(np.asarray(embedding, np.float32).tobytes())


def test_deleted_identity_leaves_no_crop_or_embedding_on_disk(engine) -> None:
    engine, data_dir = engine
    _enroll(engine, "tony", _photo("Tony_Blair", 1))  # a neighbour that stays
    _face_id, chunks = _enroll(engine, "colin", _photo("Colin_Powell", 1))
    assert _files_holding(data_dir, chunks), "the crop should be on disk before the erasure"
    assert engine.delete_identity("g", "colin") == 1
    assert _files_holding(data_dir, chunks) == []
    assert engine.get_identity("g", "tony").external_id == "tony"


def test_deleted_face_leaves_no_crop_or_embedding_on_disk(engine) -> None:
    engine, data_dir = engine
    face_id, chunks = _enroll(engine, "gray", _photo("Gray_Davis", 1))
    engine.delete_face("g", face_id)
    assert _files_holding(data_dir, chunks) == []


def test_erasure_completes_while_searches_keep_running(engine) -> None:
    """Readers hold old snapshots: the delete returns at once and the WAL is emptied by the
    background retry as soon as they let go (here: within a few seconds)."""
    engine, data_dir = engine
    _face_id, chunks = _enroll(engine, "colin", _photo("Colin_Powell", 1))
    probe = _photo("Colin_Powell", 2)
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            engine.identify("g", probe)

    readers = [threading.Thread(target=search) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(0.3)
        engine.delete_identity("g", "colin")
        deadline = time.monotonic() + 15
        while _files_holding(data_dir, chunks) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert _files_holding(data_dir, chunks) == []
