"""PostgreSQL high availability, on clusters the tests start themselves.

- A hot standby streaming from the primary (`pg_basebackup -R`): a replica that reads from it
  finds every committed enrollment once replay has caught up; the lag is printed.
- The primary SIGKILLed mid-enroll: after a restart, every enrollment and deletion the catalog
  acknowledged is there (and searchable), and the index holds exactly what SQL holds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.index.backend import open_backend
from facedb.storage.catalog import Catalog, EnrollRequest, GalleryConfig, NewFace
from facedb.storage.db import migrate
from tests.postgres_cluster import PgCluster
from tests.store.conftest import BOTH_INDEXES, OpenCatalog, gallery_name
from tests.store.crash_child import DIM, enroll_and_acknowledge, vector_for

INDEX_BACKENDS = BOTH_INDEXES  # FAISS and a real Milvus core

pytestmark = pytest.mark.postgres
VISIBLE_WITHIN_S = 10.0  # a bound for the test only; the measured lag is printed


@pytest.fixture(scope="module")
def primary() -> Iterator[PgCluster]:
    cluster = PgCluster.primary()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="module")
def standby(primary: PgCluster) -> Iterator[PgCluster]:
    replica = primary.standby()
    yield replica
    replica.remove()


def _new_database(cluster: PgCluster) -> str:
    url = cluster.create_database(f"facedb_ha_{uuid.uuid4().hex[:10]}")
    migrate(url)
    return url


def _replica_url(standby: PgCluster, primary_url: str) -> str:
    return standby.database_url(sa.engine.make_url(primary_url).database or "postgres")


def _wait_visible(engine: sa.Engine, face_ids: list[int]) -> float:
    """Seconds until the standby shows every one of `face_ids`."""
    started = time.perf_counter()
    query = sa.text("SELECT count(*) FROM faces WHERE id = ANY(:ids)")
    while time.perf_counter() - started < VISIBLE_WITHIN_S:
        with engine.connect() as connection:
            if connection.execute(query, {"ids": face_ids}).scalar() == len(face_ids):
                return time.perf_counter() - started
        time.sleep(0.001)
    raise AssertionError(f"faces {face_ids} not on the standby after {VISIBLE_WITHIN_S} s")


def test_a_replica_on_the_standby_finds_committed_enrollments(
    primary: PgCluster, standby: PgCluster, tmp_path, open_catalog: OpenCatalog
) -> None:
    url = _new_database(primary)
    replica_url = _replica_url(standby, url)
    vectors = np.stack([vector_for(f"s{i}", 0) for i in range(40)])
    name = gallery_name("ha")
    watcher = sa.create_engine(replica_url)
    lags, ids = [], []
    with open_catalog(url, tmp_path / "primary-index", snapshot_interval=None) as writer:
        writer.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, DIM))
        for i, vector in enumerate(vectors):
            added = writer.add_faces(name, f"s{i}", [NewFace(vector)])
            lags.append(_wait_visible(watcher, added))
            ids += added
    watcher.dispose()
    print(
        f"standby visibility lag over {len(lags)} commits: "
        f"p50 {np.percentile(lags, 50) * 1e3:.1f} ms, p99 {np.percentile(lags, 99) * 1e3:.1f} ms"
    )
    # A replica of its own (own index directory) that only reads, from the standby.
    with open_catalog(
        replica_url, tmp_path / "replica-index", migrate=False, snapshot_interval=None
    ) as reader:
        assert reader.face_ids(name) == ids
        assert [hits[0].face_id for hits in reader.search(name, vectors, k=1)] == ids


def test_sigkill_of_the_primary_mid_enroll_loses_nothing_acknowledged(
    tmp_path, index_backend: str, request
) -> None:
    cluster = PgCluster.primary()
    try:
        url = _new_database(cluster)
        milvus = request.getfixturevalue("milvus_uri") if index_backend == "milvus" else None
        backend = (index_backend, milvus)
        index_dir = tmp_path / "index"
        name = gallery_name("pgkill")
        with _open(url, index_dir, backend) as catalog:
            catalog.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, DIM))
        added: dict[str, list[int]] = {}
        deleted: set[str] = set()
        for round_no in range(3):
            _enroll_and_kill_primary(
                cluster, url, index_dir, name, round_no, backend, added, deleted
            )
            cluster.start()
            _verify(url, index_dir, name, backend, added, deleted)
        assert len(added) - len(deleted) > 3, (len(added), len(deleted))
    finally:
        cluster.remove()


def _open(url: str, index_dir, backend: tuple[str, str | None]) -> Catalog:
    return Catalog.open(url, index_dir, snapshot_interval=None, backend=open_backend(*backend))


def _enroll_and_kill_primary(
    cluster: PgCluster, url, index_dir, name, round_no, backend, added, deleted
) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.store.crash_child"])
    parent, child = context.Pipe()
    process = context.Process(
        target=enroll_and_acknowledge,
        args=(url, str(index_dir), name, round_no, child, backend),
        daemon=True,
    )
    process.start()
    assert parent.poll(180) and parent.recv() == ("ready",)
    time.sleep(0.3 + 0.4 * round_no)
    cluster.kill()  # the primary dies with transactions in flight
    # Collect every acknowledgement until the child reports the failure.
    while parent.poll(30):
        message = parent.recv()
        if message[0] == "added":
            added[message[1]] = message[2]
        elif message[0] == "deleted":
            deleted.add(message[1])
        else:
            break
    with contextlib.suppress(ProcessLookupError):  # it may have stopped by itself
        os.kill(process.pid, signal.SIGKILL)
    process.join(30)


def _verify(url, index_dir, name, backend, added, deleted) -> None:
    with _open(url, index_dir, backend) as catalog:
        in_sql = set(catalog.face_ids(name))
        kept = {
            external_id: ids for external_id, ids in added.items() if external_id not in deleted
        }
        acknowledged = {face_id for ids in kept.values() for face_id in ids}
        assert acknowledged <= in_sql, f"acknowledged faces lost: {sorted(acknowledged - in_sql)}"
        gone = {face_id for external_id in deleted for face_id in added.get(external_id, [])}
        assert not gone & in_sql, "an acknowledged deletion came back"
        assert sorted(catalog.index_ids(name).tolist()) == sorted(in_sql)
        queries = [vector_for(e, j) for e, ids in kept.items() for j in range(len(ids))]
        expected = [face_id for ids in kept.values() for face_id in ids]
        if queries:
            hits = catalog.search(name, np.stack(queries), k=1)
            assert [row[0].face_id for row in hits] == expected


def test_read_your_writes_through_a_replica_on_the_standby(
    primary: PgCluster, standby: PgCluster, tmp_path
) -> None:
    """The sequence an enroll returns on the primary is what a standby reader waits for."""
    url = _new_database(primary)
    name = gallery_name("ryw")
    writer = Catalog.open(url, tmp_path / "w", snapshot_interval=None)
    reader = Catalog.open(_replica_url(standby, url), tmp_path / "r", migrate=False,
                          snapshot_interval=None)  # fmt: skip
    try:
        writer.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, DIM))
        first = writer.enroll(name, EnrollRequest("r0", [NewFace(vector_for("r0", 0))]))
        assert first.sequence is not None and reader.wait_for(
            name, first.sequence, VISIBLE_WITHIN_S
        )
        for i in range(1, 6):
            outcome = writer.enroll(name, EnrollRequest(f"r{i}", [NewFace(vector_for(f"r{i}", 0))]))
            assert outcome.sequence is not None and outcome.sequence > first.sequence
            assert reader.wait_for(name, outcome.sequence, VISIBLE_WITHIN_S)
            hits = reader.search(name, vector_for(f"r{i}", 0)[None], k=1)
            assert hits[0][0].face_id == outcome.face_ids[0]  # read its own write
        assert not reader.wait_for(name, outcome.sequence + 1_000_000, 0.05)  # never written
    finally:
        reader.close()
        writer.close()
