"""One notified catch-up in a following catalog: the one statement against `caught_up`.

Two catalogs in this process on a fresh PostgreSQL database: A writes one face per
transaction; B, loaded and following nothing (so that only the timed call reaches SQL),
applies each change either through `LiveIndexes.apply_notified` (the follower's hot path:
one statement, `repo.changes_with_labels`) or through the full `caught_up` (gallery row,
changes, owners / identities, embeddings) on the same kept autocommit connection,
alternately, so both share the machine's load. Printed: p50 / p90 ms of each.

    python -m benchmarks.catch_up --changes 800
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from benchmarks.replicas import DIM, _fresh_database, add_database_option
from facedb.storage import repository as repo
from facedb.storage.catalog import Catalog, GalleryConfig, NewFace
from facedb.storage.tables import Gallery

GALLERY = "catch-up"


def _full(reader: Catalog, sequence: int) -> None:
    """The path every notice took before: `caught_up` on the follower's connection."""
    live = reader._live
    with live.locked(GALLERY) as slot, live._tail.session() as session:
        assert slot.index is not None
        row = session.scalars(select(Gallery).where(Gallery.id == slot.index.ref.id)).one()
        live.caught_up(session, slot, row)


def _one_statement(reader: Catalog, sequence: int) -> None:
    assert reader._live.apply_notified(GALLERY, sequence)


def measure(url: str, root: Path, changes: int) -> dict[str, list[float]]:
    writer = Catalog.open(url, root / "a", snapshot_interval=None)
    reader = Catalog.open(url, root / "b", snapshot_interval=None)
    try:
        writer.create_gallery(GalleryConfig(GALLERY, "bench", "cd" * 32, DIM))
        vectors = np.random.default_rng(5).standard_normal((changes + 1, DIM))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        writer.add_faces(GALLERY, "p0", [NewFace(vectors[0])])
        reader.index_ids(GALLERY)  # loaded: index and labels
        paths = {"caught_up (before)": _full, "one statement": _one_statement}
        times: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(1, changes + 1):
            writer.add_faces(GALLERY, f"p{i}", [NewFace(vectors[i])])
            with writer._db.read() as session:
                sequence = repo.latest_seq(session, repo.get_gallery(session, GALLERY).id)
            name = list(paths)[i % 2]
            began = time.perf_counter()
            paths[name](reader, sequence)
            times[name].append((time.perf_counter() - began) * 1e3)
            assert reader.index_ids(GALLERY).size == i + 1
        return times
    finally:
        reader.close()
        writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--changes", type=int, default=800)
    args = parser.parse_args(argv)
    url, admin, name = _fresh_database(args.database_url)
    root = Path(tempfile.mkdtemp(prefix="facedb-bench-catch-up-"))
    try:
        times = measure(url, root, args.changes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    print("| path | catch-ups | p50 ms | p90 ms |\n|---|---|---|---|")
    for path, values in times.items():
        p50, p90 = np.percentile(values, [50, 90])
        print(f"| {path} | {len(values)} | {p50:.2f} | {p90:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
