"""Service throughput and latency at 1-8 clients, micro-batching off and on, one run.

    python -m benchmarks.service                          # clients 1,2,4,8; batching off,on
    python -m benchmarks.service --clients 2,8 --probes 80 --rounds 3 --batch-wait-ms 1

Real servers run as subprocesses on loopback ports (SQLite + FAISS in temp dirs, SCRFD-500M
+ a batch-safe recognizer: by default the ArcFace int8 fixture rewritten as float32 by
`facedb models optimize`), one per batching variant, each with the same enrolled gallery
(the LFW gallery images of the first identities). N client threads then identify the
probes; the cells (clients x batching) are interleaved round by round so that the load of
a shared machine falls on every variant alike, and each cell's figures pool its rounds.
The first variant's server also answers the probes over its HTTP/JSON API at the fewest
clients (multipart uploads, one keep-alive session per client thread), interleaved with
the rest: HTTP against gRPC is what the HTTP transport costs. Then the engine runs
in-process at one client with a stage observer: the per-stage split (decode, detect,
align, gates, embed, search, labels; `embed` includes the wait in the batcher; `labels` is
the in-memory face -> identity lookup of the hits) and the gRPC / in-process
p50 ratio (what gRPC, protobuf and the interceptors cost).
Figures depend on the machine: they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import requests

from benchmarks.paths import REPO, shared_dir
from facedb.client import FaceDBClient
from facedb.config import load_settings
from facedb.engine import Engine, EnrollItem, open_engine
from facedb.models.optimize import optimize_model
from facedb.service.limits import ConcurrencyLimiter

SHARED = shared_dir()
DETECTOR = f"scrfd:{SHARED / 'models' / 'scrfd_500m_kps.onnx'}"
INT8_ARCFACE = SHARED / "models" / "arcface_w600k_mbf_int8.onnx"
KEY = "benchmark-key"
HTTP = "HTTP"  # the cell of the first variant's server asked over HTTP


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str


@dataclass(frozen=True)
class Figures:
    calls: int
    seconds: float
    latencies: np.ndarray  # seconds per call

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)

    def __add__(self, other: Figures) -> Figures:
        latencies = np.concatenate([self.latencies, other.latencies])
        return Figures(self.calls + other.calls, self.seconds + other.seconds, latencies)


def workload(identities: int, probes: int) -> tuple[list[Photo], list[Photo]]:
    gallery: list[Photo] = []
    probe: list[Photo] = []
    with (SHARED / "data" / "lfw" / "gallery_probe.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["role"] == "gallery" and len(gallery) < identities:
            gallery.append(Photo(SHARED / "data" / row["path"], row["identity"]))
    names = {p.identity for p in gallery}
    for row in rows:
        if row["role"] == "probe" and row["identity"] in names and len(probe) < probes:
            probe.append(Photo(SHARED / "data" / row["path"], row["identity"]))
    return gallery, probe


def measure(call: Callable[[Photo], object], photos: Sequence[Photo], clients: int) -> Figures:
    """Run `call` over the photos from `clients` threads; wall time and per-call latency."""
    for photo in photos:
        photo.path.read_bytes()  # warm the page cache: disk reads stay out of the timings

    def timed(photo: Photo) -> float:
        start = time.perf_counter()
        call(photo)
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(timed, photos))
    return Figures(len(photos), time.perf_counter() - start, np.asarray(latencies))


# ------------------------------------------------------------------------- gRPC


@dataclass(frozen=True)
class Setup:
    recognizer: str
    workers: int
    batch_wait_ms: float


@dataclass(frozen=True)
class Variant:
    """A server configuration: `off`, `on`, optionally `:wN` (workers), `:tN` (threads of
    the batcher's runs; default every core), `:mN` (batch wait ms; default --batch-wait-ms),
    e.g. `on:w4:t1:m0`."""

    name: str
    batching: bool
    workers: int | None = None
    batch_threads: int | None = None
    wait_ms: float | None = None

    @classmethod
    def parse(cls, text: str) -> Variant:
        mode, *options = text.split(":")
        if mode not in ("off", "on"):
            raise argparse.ArgumentTypeError(f"a batching variant starts with off or on: {text}")
        values = {option[0]: int(option[1:]) for option in options}
        return cls(text, mode == "on", values.get("w"), values.get("t"), values.get("m"))

    def workers_in(self, setup: Setup) -> int:
        return self.workers or setup.workers

    def wait_in(self, setup: Setup) -> float:
        return setup.batch_wait_ms if self.wait_ms is None else self.wait_ms


def launch_server(
    data_dir: Path, setup: Setup, variant: Variant, log_path: Path
) -> tuple[subprocess.Popen, Path]:
    env = {
        **os.environ,
        "FACEDB_API_KEYS": json.dumps({KEY: {"role": "admin", "galleries": ["*"]}}),
        "FACEDB_MICRO_BATCHING": "1" if variant.batching else "0",
        "FACEDB_BATCH_THREADS": str(variant.batch_threads or 0),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "facedb", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--detector", DETECTOR, "--recognizer", setup.recognizer]
    command += ["--workers", str(variant.workers_in(setup)), "--max-queue", "64"]
    command += ["--batch-wait-ms", str(variant.wait_in(setup)), "--http-port", "0"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stderr=log, stdout=log, env=env)
    return process, log_path


def server_address(process: subprocess.Popen, log_path: Path) -> tuple[str, str]:
    """(gRPC address, HTTP base URL) once the server says it is serving."""
    while process.poll() is None:
        for line in log_path.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("msg") == "facedb serving":
                return str(entry["address"]), f"http://{entry['http_address']}"
        time.sleep(0.2)
    raise RuntimeError(f"facedb serve exited: {log_path.read_text()[-2000:]}")


@contextmanager
def servers(
    setup: Setup, variants: list[Variant], tmp: Path
) -> Iterator[dict[str, tuple[str, str]]]:
    """One server per variant, started together; their addresses by variant name."""
    launched = {
        v.name: launch_server(tmp / str(i), setup, v, tmp / f"{i}.log")
        for i, v in enumerate(variants)
    }
    try:
        yield {name: server_address(*started) for name, started in launched.items()}
    finally:
        for process, _ in launched.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in launched.values():
            process.wait(timeout=60)


def prepare(db: FaceDBClient, gallery: list[Photo], probes: list[Photo], clients: int) -> None:
    """The gallery enrolled, sessions and index warm (a few concurrent identifies)."""
    db.create_gallery("bench")
    measure(
        lambda p: db.enroll("bench", p.identity, [p.path], allow_multiple_faces=True), gallery, 2
    )
    measure(lambda p: db.identify("bench", p.path), probes[: 2 * clients], clients)


def grpc_grid(
    setup: Setup,
    variants: list[Variant],
    gallery: list[Photo],
    probes: list[Photo],
    clients: list[int],
    rounds: int,
) -> dict[tuple[int, str], Figures]:
    """Identify figures per (clients, variant), interleaved cell by cell, rounds pooled."""
    cells: dict[tuple[int, str], Figures] = {}
    names = [v.name for v in variants]
    with tempfile.TemporaryDirectory() as tmp, servers(setup, variants, Path(tmp)) as addresses:
        dbs = {v: FaceDBClient(a, api_key=KEY, timeout=300) for v, (a, _) in addresses.items()}
        over_http = _http_identify(addresses[names[0]][1])
        try:
            for db in dbs.values():
                prepare(db, gallery, probes, max(clients))
            for round_number in range(rounds):
                for n in clients:
                    # Alternate which variant goes first, so none always runs warmer.
                    order = names if round_number % 2 == 0 else names[::-1]
                    for variant in order:
                        figures = measure(_identifier(dbs[variant]), probes, n)
                        key = (n, variant)
                        cells[key] = cells[key] + figures if key in cells else figures
                    if n == min(clients):
                        figures = measure(over_http, probes, n)
                        key = (n, HTTP)
                        cells[key] = cells[key] + figures if key in cells else figures
        finally:
            for db in dbs.values():
                db.close()
    return cells


def _identifier(db: FaceDBClient) -> Callable[[Photo], object]:
    return lambda photo: db.identify("bench", photo.path)


def _http_identify(base: str) -> Callable[[Photo], object]:
    sessions = threading.local()  # one keep-alive connection per client thread

    def identify(photo: Photo) -> object:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
            sessions.session.headers["x-api-key"] = KEY
        files = {"image": (photo.path.name, photo.path.read_bytes())}
        response = sessions.session.post(f"{base}/v1/galleries/bench/identify", files=files)
        response.raise_for_status()
        return response.json()

    return identify


def start_server(data_dir: Path, workers: int, log_path: Path) -> tuple[subprocess.Popen, str, str]:
    """A server of the fixture pipeline (ArcFace int8: never batched): (process, gRPC
    address, HTTP base URL); other benchmarks use it."""
    setup = Setup(f"arcface:{INT8_ARCFACE}", workers, 2.0)
    process, log = launch_server(data_dir, setup, Variant("on", True), log_path)
    return (process, *server_address(process, log))


# ------------------------------------------------------------------- in-process


class StageClock:
    """An engine observer summing each stage's seconds (thread-safe)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] += seconds

    def rejection(self, reason: str) -> None:
        pass


@dataclass(frozen=True)
class Split:
    figures: Figures  # in-process identify at one client
    stage_ms: dict[str, float]  # mean ms per call per stage, at one client
    merges: str  # the batcher's counts at the most clients ("" when not batching)


def engine_split(
    setup: Setup, gallery: list[Photo], probes: list[Photo], variant: Variant, clients: int
) -> Split:
    """In-process identify at one client (figures, stage split), then at `clients` clients
    for the batcher's counts: how many calls its runs merged."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None,
            data_dir=Path(tmp),
            detector=DETECTOR,
            recognizer=setup.recognizer,
            workers=variant.workers_in(setup),
            micro_batching=variant.batching,
            batch_wait_ms=variant.wait_in(setup),
            batch_threads=variant.batch_threads,
        )
        engine = open_engine(settings)
        # The server's bound on CPU-bound work, so both sides run the same concurrency.
        limiter = ConcurrencyLimiter(settings.worker_count, max_queue=1024)
        try:
            engine.create_gallery("bench")
            _enroll_all(engine, gallery)
            engine.identify("bench", probes[0].path.read_bytes())
            clock = StageClock()
            engine.observe(clock)
            figures = measure(lambda p: _identify(engine, limiter, p), probes, 1)
            stage_ms = {name: 1000 * s / figures.calls for name, s in clock.seconds.items()}
            merges = ""
            if engine.batcher is not None:
                before = replace(engine.batcher.counts)
                measure(lambda p: _identify(engine, limiter, p), probes, clients)
                after = engine.batcher.counts
                merges = (
                    f"{after.submissions - before.submissions} embed calls in "
                    f"{after.runs - before.runs} runs at {clients} clients "
                    f"(largest run so far {after.largest_batch} faces)"
                )
        finally:
            engine.close()
    return Split(figures, stage_ms, merges)


def _enroll_all(engine: Engine, gallery: list[Photo]) -> None:
    for photo in gallery:
        item = EnrollItem(
            "bench", photo.identity, [photo.path.read_bytes()], allow_multiple_faces=True
        )
        engine.enroll(item)


def _identify(engine: Engine, limiter: ConcurrencyLimiter, photo: Photo) -> None:
    data = photo.path.read_bytes()
    with limiter.slot():
        engine.identify("bench", data)


# ------------------------------------------------------------------------ report


def print_grid(cells: dict[tuple[int, str], Figures], clients: list[int], names: list[str]) -> None:
    header = f"{'clients':>7} {'batching':>10} {'calls':>6} {'per s':>7} {'p50 ms':>8} "
    header += f"{'p99 ms':>8} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for n in clients:
        base = cells[(n, names[0])].throughput
        for name in names:
            f = cells[(n, name)]
            print(
                f"{n:>7} {name:>10} {f.calls:>6} {f.throughput:>7.1f} "
                f"{f.percentile(50):>8.1f} {f.percentile(99):>8.1f} {f.throughput / base:>7.2f}x"
            )


def print_split(splits: dict[str, Split], grpc_p50: float) -> None:
    stages = sorted({name for split in splits.values() for name in split.stage_ms})
    print(f"{'in-process, 1 client':<22}" + "".join(f"{s:>9}" for s in stages) + f"{'p50':>9}")
    for variant, split in splits.items():
        row = "".join(f"{split.stage_ms.get(s, 0.0):>9.2f}" for s in stages)
        print(f"{variant + ' (ms)':<22}{row}{split.figures.percentile(50):>9.2f}")
    for variant, split in splits.items():
        if split.merges:
            print(f"{variant}: {split.merges}")
    first = next(iter(splits))
    local = splits[first].figures.percentile(50)
    # Measured after the grid, not interleaved with it: on a shared machine a rough figure.
    # The HTTP / gRPC ratio below is interleaved.
    print(f"\ngRPC / in-process p50 latency at 1 client, {first}: {grpc_p50 / local:.2f}x")
    print(f"(the rest of the gRPC p50: transport, protobuf, response: {grpc_p50 - local:.1f} ms)")


def batch_safe_recognizer(tmp: Path) -> str:
    """The ArcFace int8 fixture rewritten as float32 (exact weights, batch-safe)."""
    path = tmp / "arcface_w600k_mbf_f32.onnx"
    optimize_model(INT8_ARCFACE, path)
    return f"arcface:{path}"


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=50)
    parser.add_argument("--probes", type=int, default=96, help="identify calls per cell per round")
    parser.add_argument("--clients", type=int_list, default=[1, 2, 4, 8], help="e.g. 1,2,4,8")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per cell")
    parser.add_argument(
        "--batching",
        type=lambda text: [Variant.parse(part) for part in text.split(",")],
        default=[Variant("off", False), Variant("on", True)],
        help="server variants, the first is the baseline: off,on[,on:w4,on:t1,...]",
    )
    parser.add_argument("--workers", type=int, default=0, help="server workers (0: cores)")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument(
        "--recognizer", help="spec of a batch-safe recognizer (default: f32 ArcFace)"
    )
    args = parser.parse_args(argv)
    gallery, probes = workload(args.identities, args.probes)
    with tempfile.TemporaryDirectory() as tmp:
        recognizer = args.recognizer or batch_safe_recognizer(Path(tmp))
        setup = Setup(recognizer, args.workers or (os.cpu_count() or 1), args.batch_wait_ms)
        print(
            f"{len(gallery)} identities, {len(probes)} probes x {args.rounds} rounds per cell, "
            f"workers {setup.workers}, {os.cpu_count()} cores (shared with other users: "
            f"cells interleaved), batch wait {setup.batch_wait_ms} ms\n"
            f"recognizer {Path(recognizer.split(':', 1)[-1]).name}\n"
        )
        variants: list[Variant] = args.batching
        cells = grpc_grid(setup, variants, gallery, probes, args.clients, args.rounds)
        print_grid(cells, args.clients, [v.name for v in variants])
        print()
        most = max(args.clients)
        splits = {v.name: engine_split(setup, gallery, probes, v, most) for v in variants}
        fewest = min(args.clients)
        grpc_p50 = cells[(fewest, variants[0].name)].percentile(50)
        print_split(splits, grpc_p50)
        http_p50 = cells[(fewest, HTTP)].percentile(50)
        print(
            f"HTTP / gRPC identify p50 latency at {fewest} clients, {variants[0].name}: "
            f"{http_p50 / grpc_p50:.2f}x"
        )


if __name__ == "__main__":
    main()
