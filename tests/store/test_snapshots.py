"""Snapshots: replay after the watermark, and rebuilds when the snapshot cannot be trusted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.index.snapshot import MANIFEST
from facedb.storage.catalog import Catalog, NewFace
from tests.store.conftest import BOTH_INDEXES, OpenCatalog, make_gallery, unit_vectors

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core

VECTORS = unit_vectors(30, seed=11)


def populated(
    database_url: str, index_dir: Path, opener: OpenCatalog = Catalog.open
) -> tuple[str, list[int]]:
    """A gallery with 30 faces and a current snapshot on disk."""
    with opener(database_url, index_dir, snapshot_interval=None) as catalog:
        name = make_gallery(catalog)
        ids = catalog.add_faces(name, "a", [NewFace(v) for v in VECTORS[:15]])
        ids += catalog.add_faces(name, "b", [NewFace(v) for v in VECTORS[15:]])
    return name, ids


def reopened_search(
    database_url: str, index_dir: Path, name: str, opener: OpenCatalog = Catalog.open
) -> tuple[list[int], list]:
    with opener(database_url, index_dir, snapshot_interval=None) as catalog:
        top = [hits[0].face_id for hits in catalog.search(name, VECTORS, k=1)]
        return top, sorted(catalog.index_ids(name))


def snapshot_dir(index_dir: Path) -> Path:
    (directory,) = [path for path in index_dir.iterdir() if path.is_dir()]
    return directory


def index_file(index_dir: Path) -> Path:
    (path,) = snapshot_dir(index_dir).glob("index-*.faiss")
    return path


def test_a_clean_snapshot_is_loaded_not_rebuilt(database_url, index_dir, caplog) -> None:
    name, ids = populated(database_url, index_dir)
    with caplog.at_level(logging.INFO, logger="facedb.index"):
        assert reopened_search(database_url, index_dir, name) == (ids, ids)
    assert "loaded flat snapshot" in caplog.text and "rebuilding" not in caplog.text


def test_changes_after_the_watermark_are_replayed(
    database_url, index_dir, caplog, open_catalog
) -> None:
    name, ids = populated(database_url, index_dir, open_catalog)
    crashed = open_catalog(database_url, index_dir, snapshot_interval=None)
    more = crashed.add_faces(name, "c", [NewFace(v) for v in unit_vectors(5, seed=12)])
    crashed.delete_face(name, ids[0])  # also discards the snapshot file
    # ...and the process dies here: no close, no new snapshot.
    with open_catalog(database_url, index_dir, snapshot_interval=None) as catalog:
        catalog.search(name, VECTORS[:1], k=1)  # loads the gallery: replay, then a snapshot
    # A snapshot older than the deletion, then changes after it: replay, no rebuild.
    extra = crashed.add_faces(name, "d", [NewFace(v) for v in unit_vectors(3, seed=13)])
    with caplog.at_level(logging.INFO, logger="facedb.index"):
        top, in_index = reopened_search(database_url, index_dir, name, open_catalog)
    assert "replayed" in caplog.text and "rebuilding" not in caplog.text
    assert top[1:] == ids[1:] and top[0] != ids[0]
    assert in_index == sorted(ids[1:] + more + extra)


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("delete_index", "missing"),
        ("delete_manifest", "no snapshot"),
        ("flip_byte", "corrupt (checksum)"),
        ("truncate_manifest", "manifest is corrupt"),
        ("other_model", "another model"),
    ],
)
def test_a_bad_snapshot_is_detected_and_rebuilt(
    database_url, index_dir, caplog, damage: str, reason: str
) -> None:
    name, ids = populated(database_url, index_dir)
    manifest = snapshot_dir(index_dir) / MANIFEST
    if damage == "delete_index":
        index_file(index_dir).unlink()
    elif damage == "delete_manifest":
        manifest.unlink()
    elif damage == "flip_byte":
        data = bytearray(index_file(index_dir).read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_file(index_dir).write_bytes(bytes(data))
    elif damage == "truncate_manifest":
        manifest.write_text(manifest.read_text()[:20])
    else:
        fields = json.loads(manifest.read_text())
        manifest.write_text(json.dumps(fields | {"model_sha256": "ef" * 32}))
    with caplog.at_level(logging.INFO, logger="facedb.index"):
        assert reopened_search(database_url, index_dir, name) == (ids, ids)
    assert f"rebuilding index from SQL ({reason}" in caplog.text or reason in caplog.text
    assert "rebuilding" in caplog.text
    # The rebuilt index was snapshotted again: the next open loads it.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facedb.index"):
        assert reopened_search(database_url, index_dir, name) == (ids, ids)
    assert "rebuilding" not in caplog.text


def test_faces_gone_from_sql_behind_our_back_force_a_rebuild(
    database_url, index_dir, caplog, open_catalog
) -> None:
    """A snapshot may never serve a face SQL no longer has (e.g. a restored backup)."""
    name, ids = populated(database_url, index_dir, open_catalog)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:  # no change-log entry, unlike a catalog deletion
        connection.execute(sa.text("DELETE FROM faces WHERE id = :id"), {"id": ids[3]})
    engine.dispose()
    with caplog.at_level(logging.INFO, logger="facedb.index"):
        top, in_index = reopened_search(database_url, index_dir, name, open_catalog)
    assert "rebuilding" in caplog.text
    assert in_index == sorted(set(ids) - {ids[3]}) and ids[3] not in top


def test_search_results_do_not_depend_on_the_snapshot(database_url, index_dir) -> None:
    name, ids = populated(database_url, index_dir)
    top, _ = reopened_search(database_url, index_dir, name)
    np.testing.assert_array_equal(top, ids)
