"""Kill -9 a process that is enrolling, at random moments; the catalog must come back whole.

After each kill: every face SQL committed is found by its own vector at rank 1, and the
index holds exactly the faces SQL holds (nothing more: never a face SQL does not have).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np

from facedb.storage.catalog import Catalog, GalleryConfig
from tests.store.conftest import gallery_name
from tests.store.crash_child import DIM, enroll_forever, vector_for

ROUNDS = 20


def test_sigkill_at_random_moments_loses_nothing(database_url, index_dir) -> None:
    name = gallery_name("crash")
    with Catalog.open(database_url, index_dir, snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, DIM))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.store.crash_child"])  # children start in ms
    rng = np.random.default_rng(7)
    totals = []
    for round_no in range(ROUNDS):
        _run_and_kill(context, database_url, index_dir, name, round_no, rng.uniform(0.02, 0.5))
        totals.append(_verify(database_url, index_dir, name, close=round_no % 2 == 0))
    assert totals[-1] > totals[0] > 0, totals  # the children did enroll between kills


def _run_and_kill(context, url, index_dir, name, round_no: int, delay: float) -> None:
    parent, child = context.Pipe()
    process = context.Process(
        target=enroll_forever, args=(url, str(index_dir), name, round_no, child), daemon=True
    )
    process.start()
    assert parent.poll(120), "the child did not start"
    assert parent.recv() == "ready"
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL


def _verify(url: str, index_dir, name: str, close: bool) -> int:
    catalog = Catalog.open(url, index_dir, migrate=False, snapshot_interval=None)
    in_sql = catalog.face_ids(name)
    assert sorted(catalog.index_ids(name).tolist()) == in_sql
    expected, queries = [], []
    token = ""
    while True:
        page, token = catalog.list_identities(name, page_size=500, page_token=token)
        for identity in page:
            for position, face_id in enumerate(identity.face_ids):
                expected.append(face_id)
                queries.append(vector_for(identity.external_id, position))
        if not token:
            break
    assert sorted(expected) == in_sql
    if queries:
        hits = catalog.search(name, np.stack(queries), k=1)
        assert [row[0].face_id for row in hits] == expected
    if close:  # half the rounds leave no fresh snapshot behind, like a second crash
        catalog.close()
    return len(in_sql)
