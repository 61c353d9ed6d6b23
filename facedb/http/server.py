"""Serving the HTTP app with uvicorn on a thread beside the gRPC server, in one process.

The socket is bound here (so port 0 yields the real port before anything is logged), and
uvicorn runs its own event loop on a daemon thread; stopping asks it to finish the
requests in flight, then waits for the thread.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import uvicorn

from facedb.service.tls import TlsFiles

START_TIMEOUT_S = 30.0


class HttpServer:
    """uvicorn serving `app` on host:port (0: a free port), optionally over TLS."""

    def __init__(self, app: Any, host: str, port: int, tls: TlsFiles | None = None):
        self.app = app
        self.host = host
        self.requested_port = port
        self.tls = tls
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="facedb-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self.port

    def _config(self) -> uvicorn.Config:
        options: dict[str, Any] = {}
        if self.tls is not None:
            options = {"ssl_certfile": self.tls.cert, "ssl_keyfile": self.tls.key}
            if self.tls.client_ca:
                options |= {"ssl_ca_certs": self.tls.client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return uvicorn.Config(
            self.app,
            log_config=None,  # the process's JSON logging applies
            access_log=False,  # AccessLog writes the access lines
            lifespan="off",
            timeout_graceful_shutdown=10,
            **options,
        )

    def stop(self, grace: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(grace)
        if self._thread.is_alive():
            # Connections still open after the grace period (idle keep-alives, stalled TLS
            # handshakes): close them rather than leave the thread serving a closed engine.
            self._server.force_exit = True
            self._thread.join(5.0)
