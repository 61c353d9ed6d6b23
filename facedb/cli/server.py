"""`facedb serve`: run the gRPC service on the embedded default (SQLite + FAISS in the data dir)."""

from __future__ import annotations

import argparse
import logging

from facedb.cli.errors import describe
from facedb.config import ConfigError, load_settings
from facedb.index.backend import IndexBackendError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC (and HTTP) server",
        description="Serve enroll / identify / verify over gRPC, and with --http-port over "
        "HTTP/JSON with the web console. Settings come from flags, "
        "then FACEDB_* environment variables, then --config FILE (JSON).",
    )
    parser.add_argument("--config", help="JSON settings file (keys as in facedb.config)")
    parser.add_argument("--data-dir", help="database and index directory (FACEDB_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL; default: SQLite in --data-dir")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="gRPC port (default 50051; 0 picks one)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0: off)")
    parser.add_argument(
        "--http-port",
        type=int,
        help="HTTP/JSON API and web console port (0 picks one; default off)",
    )
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
    parser.add_argument(
        "--recognizer-graph",
        choices=("float32", "int8"),
        help="float32 (default): run a dynamic-int8 recognizer as its batch-safe float32 "
        "rewrite, cached by SHA-256; int8: as given (FACEDB_RECOGNIZER_GRAPH)",
    )
    parser.add_argument("--liveness", help="liveness model spec; empty: off (FACEDB_LIVENESS)")
    parser.add_argument(
        "--workers", type=int, help="concurrent CPU-bound requests (default: cores)"
    )
    parser.add_argument("--max-queue", type=int, help="requests that may wait for a worker")
    parser.add_argument(
        "--batch-wait-ms",
        type=milliseconds,
        help="micro-batching: how long a recognizer run waits for other requests' faces "
        "(default 2; FACEDB_MICRO_BATCHING=0 turns batching off)",
    )
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
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve gRPC and HTTP over TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", help="PEM CA: clients must present a certificate it signed (mTLS)"
    )
    parser.add_argument(
        "--insecure-plaintext",
        action="store_true",
        default=None,
        help="allow a non-loopback --host without TLS (TLS ends in front of this server)",
    )
    parser.add_argument("--audit-log", help="append the audit log (JSON lines) to this file")
    parser.add_argument("--text-logs", action="store_true", help="plain text logs, not JSON")
    parser.set_defaults(handler=serve)


def milliseconds(text: str) -> float:
    """A wait in milliseconds: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, got {text!r}")
    return value


def serve(args: argparse.Namespace) -> int:
    # Imported here: every other command starts without loading the engine and its models.
    from facedb.engine import open_engine
    from facedb.service.logs import configure_json_logging
    from facedb.service.server import FaceDBServer, run_until_signalled
    from facedb.service.tls import check_transport_security

    if not args.text_logs:
        configure_json_logging(logging.DEBUG if args.verbose else logging.INFO)
    settings = load_settings(
        args.config,
        data_dir=args.data_dir,
        database_url=args.database_url,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        http_port=args.http_port,
        metrics_host=args.metrics_host,
        metrics_gallery_labels=args.metrics_gallery_labels,
        detector=args.detector,
        recognizer=args.recognizer,
        recognizer_graph=args.recognizer_graph,
        liveness=args.liveness,
        workers=args.workers,
        max_queue=args.max_queue,
        batch_wait_ms=args.batch_wait_ms,
        max_image_pixels=args.max_image_pixels,
        max_image_bytes=args.max_image_bytes,
        max_message_bytes=args.max_message_bytes,
        max_images_per_request=args.max_images_per_request,
        max_request_pixels=args.max_request_pixels,
        insecure_no_auth=args.insecure_no_auth,
        index_backend=args.index_backend,
        milvus_uri=args.milvus_uri,
        milvus_consistency=args.milvus_consistency,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        insecure_plaintext=args.insecure_plaintext,
        audit_log=args.audit_log,
    )
    try:
        check_transport_security(settings)  # before the models load: fail fast
    except ConfigError as error:
        log.error("cannot start: %s", error)
        return 2
    try:
        engine = open_engine(settings)
    except IndexBackendError as error:  # Milvus unreachable or refusing: one line
        log.error("cannot start: %s", error)
        return 2
    except Exception as error:
        # A model that is not there, a bad spec, a database that is down or outdated: say
        # what (one log line), not a traceback. Anything else is a bug: let it show.
        known = describe(error)
        if known is None:
            raise
        log.error("cannot start: %s", known[0])
        return known[1]
    server = FaceDBServer(engine, settings)
    if not settings.insecure_no_auth and not settings.api_keys and not server.managed_keys.list():
        log.error(
            "no API keys configured: set FACEDB_API_KEYS (JSON) or api_keys in --config "
            "(bootstrap keys; then `facedb keys create`), or pass --insecure-no-auth for "
            "local development"
        )
        server.stop(grace=0)
        return 2
    run_until_signalled(server)
    return 0
