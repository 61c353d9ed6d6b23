"""Replicas on one PostgreSQL: 1, 2 and 3 catalog processes, each with its own FAISS copy.

For each replica count R, R processes open the same gallery (each its own index directory,
following the change log: NOTIFY at commit, polling as the fallback). Process 0 enrolls
`--enrolls` faces one by one, paced at `--rate` commits/s (the issue's bar was measured at
31/s) or, with rate 0, as fast as it can; every other process waits for each face to be
searchable in its own index. Printed per R:

- enroll/s of the writer (one face per transaction, as Enroll does),
- replication lag from the writer's commit to "searchable" on another replica, p50 / p99,
- identify (search) throughput of all processes together, 1 query per call, afterwards.

"Searchable on another replica" is probed cheaply (`--probe index`, the default): the
reader searches its loaded FAISS copy with the face's own vector every 0.5 ms, no SQL, so
the lag is the follower's (NOTIFY, catch-up, apply). A reader searching through
`Catalog.search` instead (`--probe catalog`) catches up by itself from SQL at every call:
that measures SQL visibility, and its SQL queries load the two cores the writer needs.

`--baseline main` runs every cell twice, main's code (exported with `git archive` to a
temporary directory) and this checkout's, alternately, so both share the machine's load.
Each cell is a child process with its own fresh database.

Then the cold start of a replica against `--cold` faces (inserted in bulk through
`Catalog.add_faces`): opening the catalog and answering a first search from a snapshot
taken `--tail` changes ago (load + change-log replay) against a full rebuild from SQL.

    python -m benchmarks.replicas --replicas 1,2,3 --enrolls 300 --rates 31,0 --baseline main
    python -m benchmarks.replicas --replicas '' --cold 100000

The search path is the catalog's (FAISS + the SQL label lookup), without images: the face
pipeline costs the same on every replica and would only hide the replication figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
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
PROBE_SLEEP_S = 0.0005  # between probes: lets the follower thread have the GIL
REPO = Path(__file__).resolve().parents[1]


def vector(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _in_index(catalog: Catalog, gallery: str, query: np.ndarray) -> bool:
    """Whether this process's loaded index finds `query`'s own face (no SQL). Reads the
    catalog's loaded index directly, the one name main's code has too (for --baseline)."""
    index = catalog._live.peek(gallery)
    if index is None:
        return False
    scores, ids = index.search(query, 1)
    return bool(ids[0, 0] >= 0 and scores[0, 0] > 0.999)  # random 512-d vectors: ~0 apart


def _in_catalog(catalog: Catalog, gallery: str, query: np.ndarray, external_id: str) -> bool:
    hits = catalog.search(gallery, query, k=1)[0]
    return bool(hits) and hits[0].external_id == external_id


def _enroll(catalog: Catalog, gallery: str, count: int, rate: float) -> list[float]:
    """Commit `count` faces one per transaction, paced at `rate` per second (0: at once);
    returns each commit's wall-clock time."""
    times: list[float] = []
    began = time.monotonic()
    for i in range(count):
        if rate:
            time.sleep(max(0.0, began + i / rate - time.monotonic()))
        catalog.add_faces(gallery, f"e{i}", [NewFace(vector(i))])
        times.append(time.time())
    return times


def _await_each(catalog: Catalog, gallery: str, count: int, probe: str) -> list[float]:
    """Wait for every enrolled face to be searchable here; returns when each was."""
    times: list[float] = []
    for i in range(count):
        query = vector(i)[None]
        deadline = time.monotonic() + FOUND_TIMEOUT_S
        while time.monotonic() < deadline:
            if probe == "index" and _in_index(catalog, gallery, query):
                break
            if probe == "catalog" and _in_catalog(catalog, gallery, query, f"e{i}"):
                break
            time.sleep(PROBE_SLEEP_S)
        times.append(time.time())
    return times


def _replica(
    role: str, url: str, index_dir: str, gallery: str, cell: dict, pipe: Connection
) -> None:
    """One process: the writer enrolls; readers wait for every face; all then search."""
    import faiss

    faiss.omp_set_num_threads(1)
    catalog = Catalog.open(url, index_dir, migrate=False, snapshot_interval=None)
    catalog.follow(poll_interval=0.5)
    catalog.search(gallery, vector(10**9)[None], k=1)  # loaded (and followed) from here on
    pipe.send("ready")
    pipe.recv()  # start
    count = cell["enrolls"]
    if role == "writer":
        times = _enroll(catalog, gallery, count, cell["rate"])
    else:
        times = _await_each(catalog, gallery, count, cell["probe"])
    pipe.send(times)
    pipe.recv()  # search phase
    searches, end = 0, time.monotonic() + cell["search_seconds"]
    rng = np.random.default_rng(hash(role) % 1000)
    while time.monotonic() < end:
        catalog.search(gallery, vector(int(rng.integers(count)))[None], k=10)
        searches += 1
    pipe.send(searches)
    catalog.close()


def run_replicas(url: str, cell: dict, root: Path) -> dict:
    replicas = cell["replicas"]
    gallery = f"bench-{uuid.uuid4().hex[:8]}"
    with Catalog.open(url, root / "setup", migrate=False, snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(gallery, "bench", "0" * 64, DIM))
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for number in range(replicas):
        parent, child = context.Pipe()
        role = "writer" if number == 0 else f"reader{number}"
        args = (role, url, str(root / f"r{replicas}-{number}"), gallery, cell, child)
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
        "enroll_per_s": len(commits) / (commits[-1] - started),
        "lag_p50_ms": float(np.percentile(lags, 50) * 1e3) if lags is not None else None,
        "lag_p99_ms": float(np.percentile(lags, 99) * 1e3) if lags is not None else None,
        "identify_per_s": searches / cell["search_seconds"],
    }


def _bulk_faces(catalog: Catalog, gallery: str, count: int, prefix: str, seed: int) -> None:
    """`count` synthetic unit vectors, 1,000 faces per identity and transaction."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, 1000):
        batch = rng.standard_normal((min(1000, count - start), DIM)).astype(np.float32)
        batch /= np.linalg.norm(batch, axis=1, keepdims=True)
        catalog.add_faces(gallery, f"{prefix}{start}", [NewFace(v) for v in batch])


def cold_start(url: str, faces: int, tail: int, root: Path) -> dict:
    """Seconds until a fresh replica answers: from a snapshot `tail` changes old + replay,
    and from nothing (a full rebuild from SQL)."""
    gallery = f"cold-{uuid.uuid4().hex[:8]}"
    warm_dir, cold_dir = root / "cold-warm", root / "cold-empty"
    began = time.perf_counter()
    with Catalog.open(url, warm_dir, migrate=False, snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(gallery, "bench", "0" * 64, DIM))
        _bulk_faces(catalog, gallery, faces - tail, "c", 5)
        catalog.search(gallery, vector(0)[None], k=1)
    inserted = time.perf_counter() - began
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
            kind = replica.stats()["galleries"][0].get("index_kind", "?")
            if label == "snapshot_replay_s":
                timings |= _snapshot_write(replica, gallery)
    return {"faces": faces, "tail": tail, "insert_s": inserted, "kind": kind, **timings}


def _snapshot_write(catalog: Catalog, gallery: str) -> dict[str, float]:
    """Seconds a snapshot of the (replayed, so changed) index takes, and how long of that
    its writers wait: the index file's write to the page cache (`draft_snapshot`); main's
    code held the index for the whole (fsync, checksum, manifest too)."""
    from facedb.index.snapshot import draft_snapshot  # here: --baseline cells import main's

    index = catalog._live.peek(gallery)
    assert index is not None
    began = time.perf_counter()
    draft = draft_snapshot(Path(tempfile.mkdtemp()), index._index)  # type: ignore[attr-defined]
    held = time.perf_counter() - began
    shutil.rmtree(draft.directory)
    began = time.perf_counter()
    index.snapshot()
    return {"snapshot_held_s": held, "snapshot_write_s": time.perf_counter() - began}


def _fresh_database(server_url: str) -> tuple[str, sa.Engine, str]:
    name = f"facedb_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url, admin, name


def _in_fresh_database(server_url: str, work: object, *args: object) -> dict:
    url, admin, name = _fresh_database(server_url)
    root = Path(tempfile.mkdtemp(prefix="facedb-bench-replicas-"))
    try:
        return work(url, *args, root)  # type: ignore[operator]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _run_cell(source: Path, database_url: str, cell: dict) -> dict:
    """One cell in a child process whose `facedb` is the one under `source`."""
    command = [sys.executable, str(Path(__file__).resolve()), "--database-url", database_url]
    command += ["--cell", json.dumps(cell)]
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"cell {cell} failed under {source}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _exported(ref: str, into: Path) -> Path:
    """The tree of git `ref` (e.g. main), exported without touching any worktree."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _print_cells(args: argparse.Namespace, sources: list[tuple[str, Path]]) -> None:
    print("| rate | replicas | code | enroll/s | lag p50 ms | lag p99 ms | identify/s (all) |")
    print("|---|---|---|---|---|---|---|")
    for rate in (float(value) for value in args.rates.split(",")):
        for replicas in (int(value) for value in args.replicas.split(",")):
            cell = {
                "replicas": replicas,
                "rate": rate,
                "enrolls": args.enrolls,
                "search_seconds": args.search_seconds,
                "probe": args.probe,
            }
            for label, source in sources:
                row = _run_cell(source, args.database_url, cell)
                p50, p99 = row["lag_p50_ms"], row["lag_p99_ms"]
                print(
                    f"| {f'{rate:g}/s' if rate else 'max'} | {replicas} | {label} "
                    f"| {row['enroll_per_s']:.0f} "
                    f"| {'-' if p50 is None else f'{p50:.1f}'} "
                    f"| {'-' if p99 is None else f'{p99:.1f}'} | {row['identify_per_s']:.0f} |"
                )
                sys.stdout.flush()


def _print_cold(args: argparse.Namespace) -> None:
    cold = _in_fresh_database(args.database_url, cold_start, args.cold, args.tail)
    print()
    print(
        f"| cold replica, {cold['faces']:,} faces ({cold['kind']}; inserted in "
        f"{cold['insert_s']:.0f} s) | seconds to first answer |"
    )
    print("|---|---|")
    print(f"| snapshot + replay of {cold['tail']} changes | {cold['snapshot_replay_s']:.2f} |")
    print(f"| full rebuild from SQL | {cold['full_rebuild_s']:.2f} |")
    print()
    print("| snapshot of that index | seconds |")
    print("|---|---|")
    print(
        f"| whole write (file, fsync, checksum; main held the index this long) "
        f"| {cold['snapshot_write_s']:.2f} |"
    )
    print(
        f"| index held: the file's page-cache write (this code) | {cold['snapshot_held_s']:.2f} |"
    )


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:55432/postgres",
        help="a PostgreSQL server (a fresh database is created on it and dropped after)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--replicas", default="1,2,3", help="'' skips the lag cells")
    parser.add_argument("--rates", default="31,0", help="commits/s per cell; 0: as fast as can")
    parser.add_argument("--enrolls", type=int, default=300)
    parser.add_argument("--search-seconds", type=float, default=3.0)
    parser.add_argument("--probe", choices=("index", "catalog"), default="index")
    parser.add_argument("--baseline", default="", help="a git ref to run beside (e.g. main)")
    parser.add_argument("--cold", type=int, default=0, help="faces for the cold start")
    parser.add_argument("--tail", type=int, default=1000, help="changes after the snapshot")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # internal: one cell, JSON out
    args = parser.parse_args(argv)
    if args.cell:
        row = _in_fresh_database(args.database_url, run_replicas, json.loads(args.cell))
        print(json.dumps(row))
        return 0
    with tempfile.TemporaryDirectory(prefix="facedb-baseline-") as baseline_dir:
        sources = [("this", REPO)]
        if args.baseline:
            sources.insert(0, (args.baseline, _exported(args.baseline, Path(baseline_dir))))
        if args.replicas:
            _print_cells(args, sources)
    if args.cold:
        _print_cold(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
