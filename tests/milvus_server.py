"""A real Milvus standalone server on loopback, for the tests and benchmarks.

The PyPI package `milvus` (2.3.x) ships the `milvus run standalone` binary with embedded
etcd and rocksmq: the real C++ core, not the Python emulator of milvus-lite 3.x. Each start
gets its own data directory and free ports; the embedded etcd's peer port (2380) is fixed,
so one machine runs one at a time: set FACEDB_TEST_MILVUS_URI to share a running server.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 180.0


class LocalMilvus:
    """Start with `LocalMilvus(directory)`; `.uri` to connect; `.stop()` when done."""

    def __init__(self, directory: Path) -> None:
        from milvus import MilvusServer  # the server package, only where a test asks for it

        self._server: Any = MilvusServer(wait_for_started=False)
        self.directory = directory
        self._server.set_base_dir(str(directory))
        started = time.monotonic()
        self._server.start()
        self.uri = f"http://127.0.0.1:{self._server.listen_port}"
        self._wait_healthy(directory, started)
        self.startup_seconds = time.monotonic() - started

    def _wait_healthy(self, directory: Path, started: float) -> None:
        health = f"http://127.0.0.1:{self._server.webservice_port}/healthz"
        process = self._server.server_proc
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            if process.poll() is not None:  # died (a port taken, say): say why at once
                break
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if b"OK" in response.read():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        log = directory / "logs" / "milvus-stdout.log"
        errors = [line for line in _lines(log) if "[ERROR]" in line or "[FATAL]" in line]
        self._server.stop()
        raise RuntimeError(f"Milvus standalone did not start: {errors[-3:]}")

    @property
    def pid(self) -> int:
        return int(self._server.server_proc.pid)

    def stop(self) -> None:
        self._server.stop()


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.is_file() else []
