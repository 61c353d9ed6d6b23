"""Service throughput and latency: `facedb serve` over gRPC and HTTP vs the engine in-process.

    python -m benchmarks.service                       # 100 identities, 200 probes, 4 clients
    python -m benchmarks.service --identities 50 --probes 100 --clients 2

A real server runs as a subprocess on a loopback port (SQLite + FAISS in a temp dir,
SCRFD-500M + ArcFace int8 from ../shared/models). N client threads enroll the LFW gallery
images of the first identities (one Enroll call each), then identify their probes. The same
two workloads then run against an in-process engine with the same concurrency bound (the
server's workers), so the ratio column is what gRPC, protobuf and the interceptors cost.
The probes are also identified over the same server's HTTP/JSON API (multipart uploads,
one keep-alive session per client thread): the HTTP row against the gRPC row is what the
HTTP transport costs.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from facedb.client import FaceDBClient
from facedb.config import load_settings
from facedb.engine import Engine, EnrollItem, open_engine
from facedb.service.limits import ConcurrencyLimiter

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEDB_SHARED", REPO.parent / "shared")).resolve()
DETECTOR = f"scrfd:{SHARED / 'models' / 'scrfd_500m_kps.onnx'}"
RECOGNIZER = f"arcface:{SHARED / 'models' / 'arcface_w600k_mbf_int8.onnx'}"
KEY = "benchmark-key"


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


def start_server(data_dir: Path, workers: int, log_path: Path) -> tuple[subprocess.Popen, str, str]:
    env = {
        **os.environ,
        "FACEDB_API_KEYS": json.dumps({KEY: {"role": "admin", "galleries": ["*"]}}),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "facedb", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--detector", DETECTOR, "--recognizer", RECOGNIZER]
    command += ["--workers", str(workers), "--max-queue", "64", "--http-port", "0"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stderr=log, stdout=log, env=env)
    while process.poll() is None:
        for line in log_path.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("msg") == "facedb serving":
                return process, entry["address"], f"http://{entry['http_address']}"
        time.sleep(0.2)
    raise RuntimeError(f"facedb serve exited: {log_path.read_text()[-2000:]}")


def server_figures(
    gallery: list[Photo], probes: list[Photo], clients: int, workers: int
) -> tuple[Figures, Figures, Figures]:
    """(enroll over gRPC, identify over gRPC, identify over HTTP) on one server."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, log_path = Path(tmp) / "data", Path(tmp) / "serve.log"
        process, address, base = start_server(data_dir, workers, log_path)
        try:
            with FaceDBClient(address, api_key=KEY, timeout=300) as db:
                db.create_gallery("bench")
                db.identify("bench", probes[0].path)  # warm-up: sessions, index
                enroll = measure(
                    lambda p: db.enroll("bench", p.identity, [p.path], allow_multiple_faces=True),
                    gallery,
                    clients,
                )
                identify = measure(lambda p: db.identify("bench", p.path), probes, clients)
            http_identify = measure(_http_identify(base), probes, clients)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    return enroll, identify, http_identify


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


# ------------------------------------------------------------------- in-process


def engine_figures(
    gallery: list[Photo], probes: list[Photo], clients: int, workers: int
) -> tuple[Figures, Figures]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None, data_dir=Path(tmp), detector=DETECTOR, recognizer=RECOGNIZER, workers=workers
        )
        engine = open_engine(settings)
        # The server's bound on CPU-bound work, so both sides run the same concurrency.
        limiter = ConcurrencyLimiter(settings.worker_count, max_queue=1024)
        try:
            engine.create_gallery("bench")
            engine.identify("bench", probes[0].path.read_bytes())
            enroll = measure(lambda p: _enroll(engine, limiter, p), gallery, clients)
            identify = measure(lambda p: _identify(engine, limiter, p), probes, clients)
        finally:
            engine.close()
    return enroll, identify


def _enroll(engine: Engine, limiter: ConcurrencyLimiter, photo: Photo) -> None:
    item = EnrollItem("bench", photo.identity, [photo.path.read_bytes()], allow_multiple_faces=True)
    with limiter.slot():
        engine.enroll(item)


def _identify(engine: Engine, limiter: ConcurrencyLimiter, photo: Photo) -> None:
    data = photo.path.read_bytes()
    with limiter.slot():
        engine.identify("bench", data)


# ------------------------------------------------------------------------ report


def print_table(rows: list[tuple[str, str, Figures]], ratios: dict[str, float]) -> None:
    header = f"{'operation':<10} {'path':<10} {'calls':>6} {'per s':>8} {'p50 ms':>8} "
    header += f"{'p95 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for operation, path, f in rows:
        latency = " ".join(f"{f.percentile(q):>8.1f}" for q in (50, 95, 99))
        print(f"{operation:<10} {path:<10} {f.calls:>6} {f.throughput:>8.1f} {latency}")
    print()
    for label, ratio in ratios.items():
        print(f"{label} p50 latency: {ratio:.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=0, help="server workers (0: cores)")
    args = parser.parse_args(argv)
    gallery, probes = workload(args.identities, args.probes)
    print(
        f"{len(gallery)} identities, {len(probes)} probes, {args.clients} clients, "
        f"workers {args.workers or os.cpu_count()}, {os.cpu_count()} cores\n"
    )
    grpc_enroll, grpc_identify, http_identify = server_figures(
        gallery, probes, args.clients, args.workers
    )
    local_enroll, local_identify = engine_figures(gallery, probes, args.clients, args.workers)
    print_table(
        [
            ("enroll", "gRPC", grpc_enroll),
            ("enroll", "engine", local_enroll),
            ("identify", "gRPC", grpc_identify),
            ("identify", "HTTP", http_identify),
            ("identify", "engine", local_identify),
        ],
        {
            "gRPC / in-process, enroll": grpc_enroll.percentile(50) / local_enroll.percentile(50),
            "gRPC / in-process, identify": grpc_identify.percentile(50)
            / local_identify.percentile(50),
            "HTTP / gRPC, identify": http_identify.percentile(50) / grpc_identify.percentile(50),
        },
    )


if __name__ == "__main__":
    main()
