"""A real HTTP server on 127.0.0.1 standing in for the upstream model releases."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from facedb.models import store


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def mirror() -> Iterator[Callable[[Path], str]]:
    """Start a server for a directory and return its base URL; all are stopped afterwards."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        server, url = serve_directory(directory)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def model_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache per test, no mirror, no proxy for 127.0.0.1, short back-off,
    a private digest index, and the default models in use."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name in ("DETECTOR", "RECOGNIZER", "LIVENESS", "QUALITY_MODEL", "CONFIG"):
        monkeypatch.delenv(f"FACEDB_{name}", raising=False)
    monkeypatch.delenv("FACEDB_MODEL_MIRROR", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(store, "BACKOFF_SECONDS", 0.01)
    return cache
