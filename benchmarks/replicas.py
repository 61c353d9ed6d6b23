"""Replicas on one PostgreSQL: 1, 2 and 3 catalog processes, each with its own FAISS copy.

For each replica count R, R processes open the same gallery (each its own index directory,
following the change log: NOTIFY at commit, polling as the fallback). Process 0 enrolls
`--enrolls` faces one by one as fast as it can; every other process waits for each face to
be found at rank 1 by its own vector. Printed per R:

- enroll/s of the writer (one face per transaction, as Enroll does),
- replication lag from the writer's commit to "searchable" on another replica, p50 / p99,
- identify (search) throughput of all processes together, 1 query per call.

Then the cold start of a replica against `--cold` faces: the snapshot + change-log replay
(a snapshot taken `--tail` changes ago) against a full rebuild from SQL.

    python -m benchmarks.replicas --database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    python -m benchmarks.replicas --replicas 1,2,3 --enrolls 300 --cold 100000

The search path is the catalog's (FAISS + the SQL label lookup), without images: the face
pipeline costs the same on every replica and would only hide the replication figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from facedb.storage.catalog import Catalog, GalleryConfig, NewFace
from facedb.storage.db import migrate

DIM = 512
FOUND_TIMEOUT_S = 30.0


def vector(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _replica(
    role: str, url: str, index_dir: str, gallery: str, count: int, seconds: float, pipe: Connection
) -> None:
    """One process: the writer enrolls; readers wait for every face; all then search."""
    import faiss

    faiss.omp_set_num_threads(1)
    catalog = Catalog.open(url, index_dir, migrate=False, snapshot_interval=None)
    catalog.follow(poll_interval=0.5)
    catalog.search(gallery, vector(10**9)[None], k=1)  # loaded (and followed) from here on
    pipe.send("ready")
    pipe.recv()  # start
    times: list[float] = []
    if role == "writer":
        for i in range(count):
            catalog.add_faces(gallery, f"e{i}", [NewFace(vector(i))])
            times.append(time.time())
    else:
        for i in range(count):
            query = vector(i)[None]
            deadline = time.monotonic() + FOUND_TIMEOUT_S
            while time.monotonic() < deadline:
                hits = catalog.search(gallery, query, k=1)[0]
                if hits and hits[0].external_id == f"e{i}":
                    break
                time.sleep(0.0005)  # lets this process's follower thread run (the GIL)
            times.append(time.time())
    pipe.send(times)
    pipe.recv()  # search phase
    searches, end = 0, time.monotonic() + seconds
    rng = np.random.default_rng(hash(role) % 1000)
    while time.monotonic() < end:
        catalog.search(gallery, vector(int(rng.integers(count)))[None], k=10)
        searches += 1
    pipe.send(searches)
    catalog.close()


def run_replicas(url: str, replicas: int, count: int, seconds: float, root: Path) -> dict:
    gallery = f"bench-{uuid.uuid4().hex[:8]}"
    with Catalog.open(url, root / "setup", migrate=False, snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(gallery, "bench", "0" * 64, DIM))
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for number in range(replicas):
        parent, child = context.Pipe()
        role = "writer" if number == 0 else f"reader{number}"
        args = (role, url, str(root / f"r{replicas}-{number}"), gallery, count, seconds, child)
        process = context.Process(target=_replica, args=args, daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    for pipe in pipes:
        if not pipe.poll(120) or pipe.recv() != "ready":
            raise RuntimeError("a replica process did not start (see its traceback above)")
    started = time.time()
    for pipe in pipes:
        pipe.send("start")
    times = [np.asarray(pipe.recv()) for pipe in pipes]
    for pipe in pipes:
        pipe.send("search")
    searches = sum(pipe.recv() for pipe in pipes)
    for process in processes:
        process.join(60)
    commits = times[0]
    lags = np.concatenate([found - commits for found in times[1:]]) if replicas > 1 else None
    return {
        "replicas": replicas,
        "enroll_per_s": count / (commits[-1] - started),
        "lag_p50_ms": float(np.percentile(lags, 50) * 1e3) if lags is not None else None,
        "lag_p99_ms": float(np.percentile(lags, 99) * 1e3) if lags is not None else None,
        "identify_per_s": searches / seconds,
    }


def cold_start(url: str, faces: int, tail: int, root: Path) -> dict:
    """Seconds until a fresh replica answers: from a snapshot `tail` changes old + replay,
    and from nothing (a full rebuild from SQL)."""
    gallery = f"cold-{uuid.uuid4().hex[:8]}"
    warm_dir, cold_dir = root / "cold-warm", root / "cold-empty"
    with Catalog.open(url, warm_dir, migrate=False, snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(gallery, "bench", "0" * 64, DIM))
        rng = np.random.default_rng(5)
        for start in range(0, faces - tail, 1000):
            batch = rng.standard_normal((min(1000, faces - tail - start), DIM)).astype(np.float32)
            catalog.add_faces(gallery, f"c{start}", [NewFace(v) for v in batch])
        catalog.search(gallery, vector(0)[None], k=1)
    with Catalog.open(url, root / "writer", migrate=False, snapshot_interval=None) as writer:
        for i in range(tail):  # committed after the snapshot: to be replayed
            writer.add_faces(gallery, f"t{i}", [NewFace(vector(10_000 + i))])
        writer.delete_face(gallery, writer.face_ids(gallery)[0])
    timings: dict[str, float] = {}
    for label, directory in (("snapshot_replay_s", warm_dir), ("full_rebuild_s", cold_dir)):
        began = time.perf_counter()
        with Catalog.open(url, directory, migrate=False, snapshot_interval=None) as replica:
            replica.search(gallery, vector(0)[None], k=1)
            timings[label] = time.perf_counter() - began
    return {"faces": faces, "tail": tail, **timings}


def _fresh_database(server_url: str) -> tuple[str, sa.Engine, str]:
    name = f"facedb_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url, admin, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:55432/postgres",
        help="a PostgreSQL server (a fresh database is created on it and dropped after)",
    )
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--enrolls", type=int, default=300)
    parser.add_argument("--search-seconds", type=float, default=5.0)
    parser.add_argument("--cold", type=int, default=100_000, help="faces for the cold start")
    parser.add_argument("--tail", type=int, default=1000, help="changes after the snapshot")
    args = parser.parse_args(argv)
    url, admin, name = _fresh_database(args.database_url)
    root = Path(tempfile.mkdtemp(prefix="facedb-bench-replicas-"))
    try:
        print("| replicas | enroll/s | lag p50 ms | lag p99 ms | identify/s (all) |")
        print("|---|---|---|---|---|")
        for replicas in (int(value) for value in args.replicas.split(",")):
            row = run_replicas(url, replicas, args.enrolls, args.search_seconds, root)
            p50, p99 = row["lag_p50_ms"], row["lag_p99_ms"]
            print(
                f"| {replicas} | {row['enroll_per_s']:.0f} "
                f"| {'-' if p50 is None else f'{p50:.1f}'} "
                f"| {'-' if p99 is None else f'{p99:.1f}'} | {row['identify_per_s']:.0f} |"
            )
            sys.stdout.flush()
        if args.cold:
            cold = cold_start(url, args.cold, args.tail, root)
            print()
            print(f"| cold replica, {cold['faces']:,} faces | seconds to first answer |")
            print("|---|---|")
            print(
                f"| snapshot + replay of {cold['tail']} changes | {cold['snapshot_replay_s']:.2f} |"
            )
            print(f"| full rebuild from SQL | {cold['full_rebuild_s']:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
