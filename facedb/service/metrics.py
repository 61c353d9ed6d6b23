"""Prometheus metrics and the access log.

- `facedb_requests_total{method, code}` and `facedb_request_seconds{method}`: every call;
- `facedb_stage_seconds{stage}`: decode, detect, gates, embed, search, write, catch_up (a
  min_sequence wait) (from the engine's observer);
- `facedb_rejections_total{reason}`: faces refused at enrollment or search;
- `facedb_galleries`, `facedb_identities`, `facedb_faces`: totals, read at scrape time;
  `facedb_gallery_identities{gallery}` / `facedb_gallery_faces{gallery}` only when the
  operator opts in (`--metrics-gallery-labels`): the endpoint has no authentication, and
  ListGalleries hides gallery names from scoped keys, so /metrics must not publish them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from facedb.service.auth import current_principal, forget_principal
from facedb.service.handlers import Behavior, FaceDBInterceptor, Wrapper

log = logging.getLogger("facedb.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("facedb_requests", "RPCs served, by method and status code", ["method", "code"])
REQUEST_SECONDS = Histogram(
    "facedb_request_seconds", "RPC latency by method", ["method"], buckets=_LATENCY_BUCKETS
)
STAGE_SECONDS = Histogram(
    "facedb_stage_seconds", "Time per engine stage", ["stage"], buckets=_LATENCY_BUCKETS
)
REJECTIONS = Counter("facedb_rejections", "Faces refused, by reason", ["reason"])


class PrometheusObserver:
    """The engine's observer: stage timings and rejections into the metrics above."""

    def stage(self, name: str, seconds: float) -> None:
        STAGE_SECONDS.labels(name).observe(seconds)

    def rejection(self, reason: str) -> None:
        REJECTIONS.labels(reason).inc()


class GalleryCollector(Collector):
    """Gallery sizes, asked from the engine when Prometheus scrapes (never stale).

    Totals always; per-gallery series (named by gallery) only when `per_gallery` is set.
    """

    def __init__(
        self, sizes: Callable[[], Iterable[tuple[str, int, int]]], per_gallery: bool = False
    ):
        self._sizes = sizes  # () -> [(gallery, identities, faces)]
        self._per_gallery = per_gallery

    def collect(self) -> Iterable[GaugeMetricFamily]:
        sizes = list(self._sizes())
        totals = [
            GaugeMetricFamily("facedb_galleries", "Galleries", value=len(sizes)),
            GaugeMetricFamily(
                "facedb_identities", "Identities in all galleries", value=sum(s[1] for s in sizes)
            ),
            GaugeMetricFamily(
                "facedb_faces", "Faces in all galleries", value=sum(s[2] for s in sizes)
            ),
        ]
        if not self._per_gallery:
            return totals
        identities = GaugeMetricFamily(
            "facedb_gallery_identities", "Identities per gallery", labels=["gallery"]
        )
        faces = GaugeMetricFamily("facedb_gallery_faces", "Faces per gallery", labels=["gallery"])
        for gallery, identity_count, face_count in sizes:
            identities.add_metric([gallery], identity_count)
            faces.add_metric([gallery], face_count)
        return [*totals, identities, faces]


class MetricsInterceptor(FaceDBInterceptor):
    """Counts and times every FaceDB call and writes one access-log line per call.

    Installed before the auth interceptor so refused calls are counted too.
    """

    def wrapper(self, metadata: dict[str, str]) -> Wrapper:
        return _measured


def _measured(name: str, inner: Behavior) -> Behavior:
    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        forget_principal()  # this worker thread may still hold the previous call's caller
        try:
            return inner(request, context)
        finally:
            seconds = time.perf_counter() - start
            code = context.code() or grpc.StatusCode.OK
            REQUESTS.labels(name, code.name).inc()
            REQUEST_SECONDS.labels(name).observe(seconds)
            _access_log(name, code, seconds)

    return behavior


def _access_log(name: str, code: grpc.StatusCode, seconds: float) -> None:
    fields = {
        "method": name,
        "code": code.name,
        "ms": round(seconds * 1000, 2),
        "key": current_principal().key_id,
    }
    log.info("rpc", extra=fields)


def start_metrics_server(
    port: int,
    host: str,
    sizes: Callable[[], Iterable[tuple[str, int, int]]],
    per_gallery: bool = False,
) -> tuple[Any, Collector]:
    """Serve /metrics on `host:port`; returns (http server, collector) to stop both later."""
    collector = GalleryCollector(sizes, per_gallery)
    REGISTRY.register(collector)
    server, _thread = start_http_server(port, addr=host)
    return server, collector


def stop_metrics_server(server: Any, collector: Collector) -> None:
    server.shutdown()
    REGISTRY.unregister(collector)
