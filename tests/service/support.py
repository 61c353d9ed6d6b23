"""Helpers for the service tests.

A real server on a loopback port (in-process, or `facedb serve` as a subprocess), real
models from ../shared/models, real LFW photos, a real SQLite database in a temp dir.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facedb.client import FaceDBClient
from facedb.config import Settings, load_settings
from facedb.engine import open_engine
from facedb.service.server import FaceDBServer
from tests.paths import ARCFACE, DATA, LFW, REPO, SCRFD

os.environ.setdefault("FACEDB_ORT_THREADS", "1")  # 2 cores shared with other test runs

ADMIN_KEY = "admin-key-0123456789"
KEYS = {
    ADMIN_KEY: {"role": "admin", "galleries": ["*"]},
    "enroll-a": {"role": "enroll", "galleries": ["a"]},
    "search-a": {"role": "search", "galleries": ["a"]},
    "search-crops-a": {"role": "search", "galleries": ["a"], "view_crops": True},
    "enroll-b": {"role": "enroll", "galleries": ["b"]},
}
SERVER_START_TIMEOUT_S = 120


def server_settings(data_dir: Path, **overrides: Any) -> Settings:
    values = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": 0,
        "detector": SCRFD,
        "recognizer": ARCFACE,
        "liveness": "",
        "workers": 2,
        "api_keys": KEYS,
    }
    values.update(overrides)
    return load_settings(None, **values)


@contextmanager
def running_server(data_dir: Path, **overrides: Any) -> Iterator[tuple[FaceDBServer, str]]:
    """An in-process server on a free loopback port; stopped (snapshots flushed) on exit."""
    settings = server_settings(data_dir, **overrides)
    server = FaceDBServer(open_engine(settings), settings)
    port = server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1.0)


@dataclass
class ServerProcess:
    process: subprocess.Popen
    address: str
    log_path: Path

    def stop(self) -> int:
        """SIGTERM, as a service manager would, and the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def start_server_process(data_dir: Path, log_path: Path, *extra: str) -> ServerProcess:
    """`facedb serve` as a subprocess; the bound port is read from its JSON log."""
    env = {**os.environ, "FACEDB_API_KEYS": json.dumps(KEYS), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "facedb", "serve", "--data-dir", str(data_dir), "--port", "0"]
    command += ["--detector", SCRFD, "--recognizer", ARCFACE, "--workers", "2", *extra]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stderr=log, stdout=log, env=env, cwd=REPO)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        server = ServerProcess(process, "", log_path)
        started = [e for e in server.log_lines() if e.get("msg") == "facedb serving"]
        if started:
            server.address = started[0]["address"]
            return server
        if process.poll() is not None:
            raise RuntimeError(f"facedb serve exited: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("facedb serve did not start in time")


# ------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str


def lfw_split() -> dict[str, list[Photo]]:
    """gallery_probe.csv by role: gallery, probe, distractor (CSV order)."""
    roles: dict[str, list[Photo]] = {"gallery": [], "probe": [], "distractor": []}
    with (LFW / "gallery_probe.csv").open() as f:
        for row in csv.DictReader(f):
            roles[row["role"]].append(Photo(DATA / row["path"], row["identity"]))
    return roles


def database_counts(data_dir: Path) -> dict[str, int]:
    """Row counts of every table that a write would touch (read straight from SQLite)."""
    with sqlite3.connect(data_dir / "facedb.sqlite3") as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("galleries", "identities", "faces", "changes")
        }


def client(address: str, key: str | None = ADMIN_KEY) -> FaceDBClient:
    return FaceDBClient(address, api_key=key, timeout=120)
