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

from facedb.index.backend import FAISS, MILVUS, open_backend
from facedb.storage.catalog import Catalog, GalleryConfig
from tests.store.conftest import BOTH_INDEXES, gallery_name
from tests.store.crash_child import DIM, enroll_forever, vector_for

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core

ROUNDS = 20
MILVUS_ROUNDS = 6


def test_sigkill_at_random_moments_loses_nothing(
    database_url, index_dir, index_backend: str, request
) -> None:
    name = gallery_name("crash")
    milvus = request.getfixturevalue("milvus_uri") if index_backend == MILVUS else None
    backend = (index_backend, milvus)
    with _open(database_url, index_dir, backend) as catalog:
        catalog.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, DIM))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.store.crash_child"])  # children start in ms
    rng = np.random.default_rng(7)
    totals = []
    # A Milvus open costs ~1 s (load, Strong counts): fewer rounds, the same checks.
    for round_no in range(ROUNDS if index_backend == FAISS else MILVUS_ROUNDS):
        delay = rng.uniform(0.02, 0.5) * (1 if index_backend == FAISS else 4)
        _run_and_kill(context, database_url, index_dir, name, round_no, delay, backend)
        totals.append(_verify(database_url, index_dir, name, round_no % 2 == 0, backend))
    assert totals[-1] > totals[0] > 0, totals  # the children did enroll between kills


def _open(url: str, index_dir, backend: tuple[str, str | None], **options) -> Catalog:
    return Catalog.open(
        url, index_dir, snapshot_interval=None, backend=open_backend(*backend), **options
    )


def _run_and_kill(context, url, index_dir, name, round_no: int, delay: float, backend) -> None:
    parent, child = context.Pipe()
    process = context.Process(
        target=enroll_forever,
        args=(url, str(index_dir), name, round_no, child, backend),
        daemon=True,
    )
    process.start()
    assert parent.poll(180), "the child did not start"
    assert parent.recv() == "ready"
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL


def _verify(url: str, index_dir, name: str, close: bool, backend) -> int:
    catalog = _open(url, index_dir, backend, migrate=False)
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
