"""Replicas that follow the change log: another catalog's writes reach this one's index.

Also the reason reading "after my watermark" is safe: per gallery, changes commit in
sequence order, because writers lock the gallery before they take a sequence number. A
transaction that commits out of order on purpose must wait for the lock, not be skipped.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facedb.storage import repository as repo
from facedb.storage.catalog import Catalog, NewFace
from facedb.storage.db import Database
from tests.store.conftest import BOTH_INDEXES, OpenCatalog, make_gallery, unit_vectors

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core

BOUND_S = 10.0  # generous: the test must not flake on a busy machine; lag is printed


def _until(condition, bound: float = BOUND_S) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < bound:
        if condition():
            return time.perf_counter() - started
        time.sleep(0.002)
    raise AssertionError(f"not within {bound} s")


def test_a_follower_finds_another_servers_enrollments_and_loses_its_deletions(
    database_url, tmp_path, open_catalog: OpenCatalog
) -> None:
    writer = open_catalog(database_url, tmp_path / "a", snapshot_interval=None)
    follower = open_catalog(database_url, tmp_path / "b", snapshot_interval=None)
    try:
        name = make_gallery(writer)
        vectors = unit_vectors(12, seed=41)
        first = writer.add_faces(name, "p0", [NewFace(vectors[0])])
        assert follower.search(name, vectors[:1], k=1)[0][0].face_id == first[0]  # loaded
        follower.follow(poll_interval=0.2)
        lags, ids = [], list(first)
        for i in range(1, 12):
            added = writer.add_faces(name, f"p{i}", [NewFace(vectors[i])])
            ids += added

            def found(vector=vectors[i], face_id=added[0]) -> bool:
                hits = follower.search(name, vector[None], k=1)[0]
                return bool(hits) and hits[0].face_id == face_id

            lags.append(_until(found))
        print(f"follower lag p50 {np.median(lags) * 1e3:.1f} ms, max {max(lags) * 1e3:.1f} ms")
        writer.delete_face(name, ids[3])
        _until(lambda: ids[3] not in follower.index_ids(name).tolist())
        for _ in range(5):  # and it stays gone
            hits = follower.search(name, vectors[3:4], k=3)[0]
            assert ids[3] not in [hit.face_id for hit in hits]
        assert sorted(follower.index_ids(name).tolist()) == sorted(set(ids) - {ids[3]})
    finally:
        follower.close()
        writer.close()


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
def test_a_commit_out_of_order_waits_for_the_lock_and_nothing_is_skipped(
    database_url, tmp_path
) -> None:
    writer = Catalog.open(database_url, tmp_path / "a", snapshot_interval=None)
    follower = Catalog.open(database_url, tmp_path / "b", snapshot_interval=None)
    db = Database(database_url)
    try:
        name = make_gallery(writer)
        vectors = unit_vectors(3, seed=42)
        writer.add_faces(name, "seed", [NewFace(vectors[0])])
        follower.search(name, vectors[:1], k=1)
        follower.follow(poll_interval=0.01)  # tails as fast as it can
        # T1 takes its sequence number first, as the catalog's write path does (gallery
        # locked first), then stalls before COMMIT.
        slow = db._write()
        row = repo.lock_gallery(slow, name)  # the write path's advisory lock
        identity, _ = repo.enroll_identity(slow, row.id, "slow", None, None)
        slow_ids, slow_seq = repo.insert_faces(
            slow, row, identity, [NewFace(vectors[1])], vectors[1:2]
        )
        # T2 starts later and would commit first, but must wait for T1's lock.
        fast: list[int] = []
        thread = threading.Thread(
            target=lambda: fast.extend(writer.add_faces(name, "fast", [NewFace(vectors[2])]))
        )
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and not fast, "T2 committed while T1 held the gallery"
        slow.commit()
        slow.close()
        thread.join(30)
        assert fast
        with db.read() as session:
            changes = repo.changes_after(session, row.id, 0)
        seq_of = {face_id: seq for seq, face_id, *_ in changes}
        assert seq_of[fast[0]] > slow_seq  # T2's number was taken after T1 committed
        _until(lambda: {slow_ids[0], fast[0]} <= set(follower.index_ids(name).tolist()))
        assert sorted(follower.index_ids(name).tolist()) == sorted(follower.face_ids(name))
    finally:
        db.dispose()
        follower.close()
        writer.close()
