"""Labels in memory (facedb.storage.labels): what a search's labels and GetGallery cost with
SQL and without, and what the in-memory label map costs in bytes.

1. `Catalog.search`, one query at a time, k hits (the engine asks top_k x 4 = 20), on a
   gallery of `--size` faces in a real SQLite (or `--database-url`) catalog: clustered unit
   vectors (benchmarks.search's model of ArcFace embeddings) under real LFW names, 1-5
   faces an identity. Rows, interleaved query by query in one run:
   - `index only`: the live index's search, no labels (the floor);
   - `SQL labels (before)`: what `Catalog.search` ran before labels moved to memory (a read
     transaction, the gallery's latest-sequence query, the index, the face -> identity
     join for the hits);
   - `in memory, unfollowed`: a catalog that follows no change log keeps the one
     latest-sequence query per search, labels from memory;
   - `in memory (after)`: a following catalog (what `open_engine` builds): no SQL.
2. GetGallery p50 over gRPC against a health check (the transport's floor), on real
   servers in this process (SCRFD-500M + the ArcFace int8 fixture, loopback): one that
   follows no change log (`change_poll_interval` 0: GetGallery reads SQL and counts the
   rows, as before) and one that does (memory), on the same database, interleaved.
3. Memory: the label map of a `--memory-size` gallery loaded from SQL (`load_labels`),
   under tracemalloc: bytes per face of the face map (two int64 arrays) and of everything
   (face map + identity table), at 5 faces per identity.

    python -m benchmarks.labels                      # 6k faces, 400 queries, 100k for memory
    python -m benchmarks.labels --size 20k --queries 1000 --memory-size 1M
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import insert

from benchmarks.paths import fixture_models, shared_dir
from benchmarks.search import gallery, parse_size
from facedb.client import FaceDBClient
from facedb.config import load_settings
from facedb.engine import open_engine
from facedb.service.server import FaceDBServer
from facedb.storage import repository as repo
from facedb.storage.catalog import Catalog, GalleryConfig, NewFace
from facedb.storage.db import Database, migrate
from facedb.storage.labels import load_labels
from facedb.storage.records import Hit
from facedb.storage.tables import Face, Identity

DIM = 512
MODEL = "0" * 64
KEY = "bench-admin-key-0123456789"


def lfw_names(count: int) -> list[str]:
    people = sorted(p.name for p in (shared_dir() / "data" / "lfw" / "images").iterdir())
    return [people[i % len(people)] + ("" if i < len(people) else f"_{i}") for i in range(count)]


def build(catalog: Catalog, name: str, vectors: np.ndarray, owners: np.ndarray) -> None:
    catalog.create_gallery(GalleryConfig(name, "bench", MODEL, DIM))
    names = lfw_names(int(owners.max()) + 1)
    for person in np.unique(owners):
        faces = [NewFace(v) for v in vectors[owners == person]]
        label = names[int(person)]
        meta = {"source": "lfw", "person": int(person)}
        catalog.add_faces(name, label, faces, display_name=label.replace("_", " "), metadata=meta)


def sql_labelled_search(catalog: Catalog, name: str, query: np.ndarray, k: int) -> list[Hit]:
    """`Catalog.search` as it was: labels read from SQL in the search's read transaction."""
    index = catalog._live.get(name)
    with catalog._db.read() as session:
        repo.gallery_with_latest_seq(session, name)
        scores, ids = index.search(query, k, None)
        labels = repo.face_labels(session, index.ref.id, [int(i) for i in ids.ravel() if i >= 0])
    return [
        Hit(int(i), labels[int(i)][0], float(s), labels[int(i)][1], labels[int(i)][2])
        for s, i in zip(scores[0], ids[0], strict=True)
        if int(i) in labels
    ]


def interleaved(runs: dict[str, Callable[[int], object]], count: int) -> dict[str, list[float]]:
    """ms per call of each run, call i of every run before call i + 1 of any."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    for i in range(count):
        for label, run in runs.items():
            start = time.perf_counter()
            run(i)
            times[label].append((time.perf_counter() - start) * 1000)
    return times


def print_latency(title: str, times: dict[str, list[float]], base: str) -> None:
    print(f"\n{title}")
    print("| path | p50 ms | p99 ms | x of " + base + " |\n|---|---|---|---|")
    floor = statistics.median(times[base])
    for label, values in times.items():
        p50, p99 = statistics.median(values), float(np.percentile(values, 99))
        print(f"| {label} | {p50:.3f} | {p99:.3f} | {p50 / floor:.2f} |")


def search_figures(url: str, root: Path, size: int, queries: int, k: int) -> None:
    vectors, owners, probes, _ = gallery(size, DIM, queries)
    name = f"labels-{uuid.uuid4().hex[:8]}"
    plain = Catalog.open(url, root / "plain", migrate=True, snapshot_interval=None)
    followed = Catalog.open(url, root / "followed", snapshot_interval=None)
    followed.follow(3600.0)  # no poll during the run; its own writes it applies itself
    try:
        started = time.perf_counter()
        build(plain, name, vectors, owners)
        print(
            f"built {size:,} faces, {owners.max() + 1:,} identities in "
            f"{time.perf_counter() - started:.0f} s"
        )
        followed.get_gallery(name)  # loads it (current: read after the writes)
        index = plain._live.get(name)
        rows = [probes[i : i + 1] for i in range(queries)]
        for catalog in (plain, followed):  # warm: loaded, caught up
            catalog.search(name, rows[0], k)
        runs: dict[str, Callable[[int], object]] = {
            "index only": lambda i: index.search(rows[i], k, None),
            "SQL labels (before)": lambda i: sql_labelled_search(plain, name, rows[i], k),
            "in memory, unfollowed": lambda i: plain.search(name, rows[i], k),
            "in memory (after)": lambda i: followed.search(name, rows[i], k),
        }
        assert sql_labelled_search(plain, name, rows[1], k) == followed.search(name, rows[1], k)[0]
        times = interleaved(runs, queries)
        print_latency(
            f"Catalog.search, {size:,} faces, k = {k}, {queries} queries", times, "index only"
        )
    finally:
        plain.close()
        followed.close()


def get_gallery_figures(root: Path, calls: int) -> None:
    url = f"sqlite:///{root / 'grpc.sqlite3'}"
    servers, clients = [], {}
    try:
        for label, poll in (("SQL (before)", 0.0), ("in memory (after)", 1.0)):
            settings = load_settings(
                None,
                data_dir=root / f"data-{poll}",
                database_url=url,
                host="127.0.0.1",
                port=0,
                liveness="",
                workers=2,
                api_keys={KEY: {"role": "admin", "galleries": ["*"]}},
                change_poll_interval=poll,
                **fixture_models(),
            )
            server = FaceDBServer(open_engine(settings), settings)
            servers.append(server)
            clients[label] = FaceDBClient(f"127.0.0.1:{server.start()}", api_key=KEY)
        first = clients["SQL (before)"]
        first.create_gallery("staff")
        engine = servers[0].engine
        model = engine.catalog.get_gallery("staff")
        vectors, owners, _, _ = gallery(6000, model.dim, 1)
        build_faces(engine.catalog, "staff", vectors, owners)
        for client in clients.values():
            client.get_gallery("staff")
        runs: dict[str, Callable[[int], object]] = {"health check": lambda i: first.health()}
        for label, client in clients.items():
            runs[f"GetGallery, {label}"] = partial(_get_gallery, client)
        faces = clients["in memory (after)"].get_gallery("staff").face_count
        times = interleaved(runs, calls)
        print_latency(
            f"GetGallery over gRPC, {faces:,} faces, {calls} calls", times, "health check"
        )
    finally:
        for client in clients.values():
            client.close()
        for server in servers:
            server.stop(grace=1.0)


def _get_gallery(client: FaceDBClient, _call: int) -> object:
    return client.get_gallery("staff")


def build_faces(catalog: Catalog, name: str, vectors: np.ndarray, owners: np.ndarray) -> None:
    for person in np.unique(owners):
        faces = [NewFace(v) for v in vectors[owners == person]]
        catalog.add_faces(name, f"p{int(person)}", faces, display_name=f"Person {int(person)}")


def memory_figures(root: Path, size: int) -> None:
    """Rows written straight into SQL (setup only), then the label map loaded from them."""
    url = f"sqlite:///{root / 'memory.sqlite3'}"
    migrate(url)
    db = Database(url)
    catalog = Catalog.open(url, root / "memory", snapshot_interval=None)
    info = catalog.create_gallery(GalleryConfig("memory", "bench", MODEL, 4))
    catalog.close()
    per_identity = 5
    names = lfw_names(size // per_identity)
    embedding = np.zeros(4, np.float32).tobytes()
    with db.write() as session:
        session.execute(
            insert(Identity),
            [
                {
                    "gallery_id": info.id,
                    "external_id": n,
                    "display_name": n.replace("_", " "),
                    "attributes": {"source": "lfw"},
                }
                for n in names
            ],
        )
        first = min(row[0] for row in repo.identity_labels(session, info.id))
        session.execute(
            insert(Face),
            [
                {
                    "gallery_id": info.id,
                    "identity_id": first + i // per_identity,
                    "embedding": embedding,
                    "model_name": "bench",
                    "model_sha256": MODEL,
                }
                for i in range(size)
            ],
        )
    with db.snapshot_read() as session:
        tracemalloc.start()
        labels = load_labels(session, info, 0)
        total, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    db.dispose()
    faces = labels.info().face_count
    print(f"\nLabel map, {faces:,} faces, {len(names):,} identities ({per_identity} faces each)")
    print("| part | bytes | bytes per face |\n|---|---|---|")
    print(
        f"| face map (face id, identity id arrays) | {labels.nbytes():,} | "
        f"{labels.nbytes() / faces:.1f} |"
    )
    print(f"| everything (face map + identity table) | {total:,} | {total / faces:.1f} |")


def main(argv: list[str] | None = None) -> int:
    # One FAISS thread, as in the tests: on 2 shared cores, OpenMP workers spin-waiting for
    # a busy sibling make a 6k-face flat search 10x slower and bury what labels cost.
    faiss.omp_set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=6000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--calls", type=int, default=400, help="GetGallery calls")
    parser.add_argument("--memory-size", type=parse_size, default=100_000)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument("--skip", default="", help="comma list of search,grpc,memory")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = args.database_url or f"sqlite:///{root / 'search.sqlite3'}"
        if "search" not in skip:
            search_figures(url, root, args.size, args.queries, args.k)
        if "grpc" not in skip:
            get_gallery_figures(root, args.calls)
        if "memory" not in skip:
            memory_figures(root, args.memory_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
