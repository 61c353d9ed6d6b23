"""`open_engine`: the engine the server runs, built from the settings."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from facedb.config import Settings
from facedb.engine.facade import Engine
from facedb.engine.telemetry import Observer, current_deadline, deadline_error
from facedb.index.backend import open_backend
from facedb.models import SessionSettings
from facedb.storage.catalog import Catalog
from facedb.vision.analysis import FaceAnalyzer
from facedb.vision.analysis.analyzer import KIND_ENV
from facedb.vision.batching import EmbeddingBatcher
from facedb.vision.detect import load_detector
from facedb.vision.embed import Embedder, load_embedder
from facedb.vision.gates import FaceGates, GatePolicy
from facedb.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)


def open_engine(settings: Settings, observer: Observer | None = None) -> Engine:
    """The engine the server runs: models from the settings, catalog in the data dir.

    onnxruntime threads per session are `settings.ort_threads`, so that the request
    workers times the threads never oversubscribe the cores. The embedded SQLite database
    is migrated on open; another database must be migrated with `facedb migrate`.
    """
    threads = settings.ort_threads
    detector = load_detector(settings.detector, threads=threads)
    embedder = load_embedder(settings.recognizer, threads=threads, graph=settings.recognizer_graph)
    gates, enrollment, search = load_gates(settings, threads)
    batcher = load_batcher(settings, embedder)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(
        settings.index_backend,
        settings.milvus_uri,
        consistency=settings.milvus_consistency,
        timeout=settings.milvus_timeout,
    )
    catalog = Catalog.open(settings.resolved_database_url, settings.index_dir, backend=backend)
    if settings.change_poll_interval > 0:
        catalog.follow(settings.change_poll_interval)
    # Analysis models (Analyze attributes) come from FACEDB_<KIND>_MODEL; none by default.
    analyzer = FaceAnalyzer.from_env(SessionSettings(threads))
    embed = None if batcher is None else batcher.embed
    return Engine(
        FacePipeline(detector, embedder, gates, embed=embed),
        catalog,
        settings=settings,
        enrollment_policy=enrollment,
        search_policy=search,
        observer=observer,
        analyzer=analyzer,
        batcher=batcher,
    )


def load_batcher(settings: Settings, embedder: Embedder) -> EmbeddingBatcher | None:
    """Concurrent requests' faces embedded in shared runs, when the settings ask for it and
    the graph batches safely (`batch_limit > 1`: not a per-batch dynamic-int8 graph)."""
    if not settings.micro_batching or embedder.batch_limit <= 1:
        if settings.micro_batching:
            log.info("micro-batching off: %s runs one face at a time", embedder.name)
        return None
    # Its own session, with its own thread count: while a shared run goes, the callers whose
    # faces it holds are idle, so it may use their cores (spinning stays off between runs).
    shared = load_embedder(
        settings.recognizer,
        threads=settings.batch_run_threads,
        allow_spinning=False,
        graph=settings.recognizer_graph,
    )
    return EmbeddingBatcher(
        shared,
        wait_ms=settings.batch_wait_ms,
        deadline=current_deadline,
        expired=deadline_error,
    )


def load_gates(settings: Settings, threads: int) -> tuple[FaceGates, GatePolicy, GatePolicy]:
    """(gates, enrollment policy, search policy); liveness only when a model is configured."""
    specs = [spec for spec in settings.liveness.split(";") if spec.strip()]
    # OCCLUDED / EYES_CLOSED gates run when a 2D106, BiSeNet or XSeg model is configured.
    gates = FaceGates.from_specs(
        specs,
        settings.quality_model or None,
        threads,
        landmarks_spec=os.environ.get(KIND_ENV["landmarks"]) or None,
        parsing_spec=os.environ.get(KIND_ENV["parsing"]) or None,
        xseg_spec=os.environ.get(KIND_ENV["xseg"]) or None,
    )
    enrollment = GatePolicy.enrollment()
    if gates.liveness is None:
        # The enrollment policy demands liveness; without a model the gates would refuse
        # every face, so the check is off and the log says so.
        log.warning("no liveness model configured (--liveness): enrollment skips liveness")
        enrollment = replace(enrollment, require_liveness=False)
    return gates, enrollment, GatePolicy.search()
