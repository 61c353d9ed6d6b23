"""`open_engine`: the engine the server runs, built from the settings."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from facedb.config import Settings
from facedb.engine.facade import Engine
from facedb.engine.telemetry import Observer
from facedb.index.backend import open_backend
from facedb.models import SessionSettings
from facedb.storage.catalog import Catalog
from facedb.vision.analysis import FaceAnalyzer
from facedb.vision.analysis.analyzer import KIND_ENV
from facedb.vision.detect import load_detector
from facedb.vision.embed import load_embedder
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
    embedder = load_embedder(settings.recognizer, threads=threads)
    gates, enrollment, search = load_gates(settings, threads)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(
        settings.index_backend, settings.milvus_uri, consistency=settings.milvus_consistency
    )
    catalog = Catalog.open(settings.resolved_database_url, settings.index_dir, backend=backend)
    if settings.change_poll_interval > 0:
        catalog.follow(settings.change_poll_interval)
    # Analysis models (Analyze attributes) come from FACEDB_<KIND>_MODEL; none by default.
    analyzer = FaceAnalyzer.from_env(SessionSettings(threads))
    return Engine(
        FacePipeline(detector, embedder, gates),
        catalog,
        settings=settings,
        enrollment_policy=enrollment,
        search_policy=search,
        observer=observer,
        analyzer=analyzer,
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
