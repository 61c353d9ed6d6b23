"""The server: gRPC (FaceDB + health + reflection v1 and v1alpha, interceptors, limits) and,
with an HTTP port, the HTTP/JSON API beside it in the same process, sharing one engine,
authorizer and limiter; graceful shutdown of both."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from facedb.config import Settings
from facedb.engine import Engine
from facedb.http.app import create_app
from facedb.http.server import HttpServer
from facedb.service.audit import AuditInterceptor, AuditLog
from facedb.service.auth import AuthInterceptor, Authorizer, KeyRing, log_auth_mode
from facedb.service.keys import KeyChain, ManagedKeys
from facedb.service.limits import ConcurrencyLimiter
from facedb.service.metrics import (
    MetricsInterceptor,
    PrometheusObserver,
    start_metrics_server,
    stop_metrics_server,
)
from facedb.service.reflection import enable_reflection
from facedb.service.servicer import FaceDBServicer
from facedb.service.tls import check_transport_security, grpc_server_credentials
from facedb.storage.api_keys import ApiKeyStore
from facedb.v1 import facedb_pb2 as pb
from facedb.v1 import facedb_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceDB"].full_name
# Threads beyond the CPU slots and their queue, so cheap calls (health, stats, lists) are
# served while every slot is busy.
LIGHT_THREADS = 4
SHUTDOWN_GRACE_S = 10.0


class FaceDBServer:
    """A running server around one engine. `start()` returns the bound port."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        engine.observe(PrometheusObserver())
        self.limiter = ConcurrencyLimiter(settings.worker_count, settings.max_queue)
        self.health = health.HealthServicer()
        self.key_store = ApiKeyStore.open(settings.resolved_database_url)
        self.managed_keys = ManagedKeys(self.key_store)
        bootstrap = KeyRing(settings.api_keys)
        keys = None if settings.insecure_no_auth else KeyChain(bootstrap, self.managed_keys)
        log_auth_mode(keys)
        self.authorizer = Authorizer(keys)
        self.audit = AuditLog(settings.audit_log)
        self.tls = check_transport_security(settings)
        self._server = self._build()
        self.http = self._build_http()
        self._metrics: tuple[Any, Any] | None = None
        self._stopped = threading.Event()
        self.port = 0

    def _build(self) -> grpc.Server:
        settings = self.settings
        threads = settings.worker_count + settings.max_queue + LIGHT_THREADS
        server = grpc.server(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facedb-rpc"),
            interceptors=[
                MetricsInterceptor(),
                AuditInterceptor(self.audit),
                AuthInterceptor(self.authorizer),
            ],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
            ],
            # Beyond this grpc itself answers RESOURCE_EXHAUSTED instead of queueing calls
            # without bound in the executor.
            maximum_concurrent_rpcs=threads + settings.max_queue,
        )
        servicer = FaceDBServicer(self.engine, self.limiter, self.managed_keys)
        pb_grpc.add_FaceDBServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_reflection((SERVICE_NAME, health.SERVICE_NAME), server)  # v1alpha and v1
        return server

    def _build_http(self) -> HttpServer | None:
        settings = self.settings
        if settings.http_port is None:
            return None
        app = create_app(
            self.engine, self.authorizer, self.limiter, settings, self.managed_keys, self.audit
        )
        return HttpServer(app, settings.host, settings.http_port, self.tls)

    def start(self) -> int:
        address = f"{self.settings.host}:{self.settings.port}"
        if self.tls is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, grpc_server_credentials(self.tls))
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        self._server.start()
        http_port = self.http.start() if self.http is not None else None
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.settings.metrics_port:
            self._metrics = start_metrics_server(
                self.settings.metrics_port,
                self.settings.metrics_host,
                self._gallery_sizes,
                per_gallery=self.settings.metrics_gallery_labels,
            )
        log.info(
            "facedb serving",
            extra={
                "address": f"{self.settings.host}:{self.port}",
                "model": self.engine.model.name,
                "workers": self.settings.worker_count,
                "ort_threads": self.settings.ort_threads,
                "metrics": f"{self.settings.metrics_host}:{self.settings.metrics_port}"
                if self.settings.metrics_port
                else None,
                "http_address": f"{self.settings.host}:{http_port}" if http_port else None,
                "tls": "off" if self.tls is None else "mutual" if self.tls.client_ca else "on",
            },
        )
        return self.port

    def _gallery_sizes(self) -> list[tuple[str, int, int]]:
        return [(g.name, g.identities, g.faces) for g in self.engine.stats()]

    def stop(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Refuse new calls, let running ones finish, then flush the index snapshots."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        if self.http is not None:
            self.http.stop(grace)
        self._server.stop(grace).wait()
        if self._metrics is not None:
            stop_metrics_server(*self._metrics)
        self.engine.close()
        self.key_store.close()
        self.audit.close()
        log.info("facedb stopped; index snapshots flushed")

    def wait(self) -> None:
        self._stopped.wait()


def run_until_signalled(server: FaceDBServer) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (main thread only)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("signal received, shutting down", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    stop.wait()
    server.stop()
