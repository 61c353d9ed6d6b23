"""`facedb serve`: run the gRPC service on the embedded default (SQLite + FAISS in the data dir)."""

from __future__ import annotations

import argparse
import logging

from facedb.config import load_settings
from facedb.engine import open_engine
from facedb.index.backend import IndexBackendError
from facedb.models.store import ModelUnavailableError
from facedb.service.logs import configure_json_logging
from facedb.service.server import FaceDBServer, run_until_signalled
from facedb.storage.errors import StoreError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC server",
        description="Serve enroll / identify / verify over gRPC. Settings come from flags, "
        "then FACEDB_* environment variables, then --config FILE (JSON).",
    )
    parser.add_argument("--config", help="JSON settings file (keys as in facedb.config)")
    parser.add_argument("--data-dir", help="database and index directory (FACEDB_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL; default: SQLite in --data-dir")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="gRPC port (default 50051; 0 picks one)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0: off)")
    parser.add_argument(
        "--metrics-host", help="address /metrics binds (default 127.0.0.1: it has no auth)"
    )
    parser.add_argument(
        "--metrics-gallery-labels",
        action="store_true",
        default=None,
        help="label gallery sizes in /metrics by gallery name (off: totals only)",
    )
    parser.add_argument("--detector", help="detector spec (FACEDB_DETECTOR)")
    parser.add_argument("--recognizer", help="recognizer spec (FACEDB_RECOGNIZER)")
    parser.add_argument("--liveness", help="liveness model spec; empty: off (FACEDB_LIVENESS)")
    parser.add_argument(
        "--workers", type=int, help="concurrent CPU-bound requests (default: cores)"
    )
    parser.add_argument("--max-queue", type=int, help="requests that may wait for a worker")
    parser.add_argument("--max-image-pixels", type=int, help="larger images are refused")
    parser.add_argument("--max-image-bytes", type=int, help="larger image files are refused")
    parser.add_argument("--max-message-bytes", type=int, help="largest request accepted")
    parser.add_argument(
        "--max-images-per-request", type=int, help="images one Enroll may carry (default 32)"
    )
    parser.add_argument(
        "--max-request-pixels",
        type=int,
        help="decoded pixels one Enroll may spend over all its images (default 100,000,000)",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="accept calls without an API key (local development only)",
    )
    parser.add_argument(
        "--index-backend",
        choices=("faiss", "milvus"),
        help="where galleries are searched: faiss (in process, default) or milvus",
    )
    parser.add_argument("--milvus-uri", help="Milvus server, e.g. http://127.0.0.1:19530")
    parser.add_argument(
        "--milvus-consistency",
        choices=("Bounded", "Session", "Strong", "Eventually"),
        help="consistency level of Milvus searches (default Bounded)",
    )
    parser.add_argument("--text-logs", action="store_true", help="plain text logs, not JSON")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    if not args.text_logs:
        configure_json_logging(logging.DEBUG if args.verbose else logging.INFO)
    settings = load_settings(
        args.config,
        data_dir=args.data_dir,
        database_url=args.database_url,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        metrics_gallery_labels=args.metrics_gallery_labels,
        detector=args.detector,
        recognizer=args.recognizer,
        liveness=args.liveness,
        workers=args.workers,
        max_queue=args.max_queue,
        max_image_pixels=args.max_image_pixels,
        max_image_bytes=args.max_image_bytes,
        max_message_bytes=args.max_message_bytes,
        max_images_per_request=args.max_images_per_request,
        max_request_pixels=args.max_request_pixels,
        insecure_no_auth=args.insecure_no_auth,
        index_backend=args.index_backend,
        milvus_uri=args.milvus_uri,
        milvus_consistency=args.milvus_consistency,
    )
    if not settings.insecure_no_auth and not settings.api_keys:
        log.error(
            "no API keys configured: set FACEDB_API_KEYS (JSON) or api_keys in --config, "
            "or pass --insecure-no-auth for local development"
        )
        return 2
    try:
        engine = open_engine(settings)
    except (ValueError, ModelUnavailableError, StoreError, IndexBackendError) as error:
        # A model that is not there, a bad spec, an outdated schema: say what, not a traceback.
        log.error("cannot start: %s", error)
        return 2
    run_until_signalled(FaceDBServer(engine, settings))
    return 0
