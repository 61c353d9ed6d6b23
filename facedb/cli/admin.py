"""`facedb migrate` and `facedb reindex`: schema revisions and index rebuilds.

`facedb reindex` works beside running servers: it switches the gallery in the database,
and every server on that database notices it in the change log, builds the new index in the
background and switches to it, answering from the old index (and old model) until then.
`facedb gallery reindex NAME --server ADDR` runs the same on a server (the Reindex RPC).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from facedb.config import Settings, load_settings
from facedb.index.vector_index import AUTO, IndexKind

if TYPE_CHECKING:
    from facedb.storage.catalog import Catalog

log = logging.getLogger(__name__)
KINDS = [AUTO, *(kind.value for kind in IndexKind)]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    migrate = subparsers.add_parser(
        "migrate",
        help="upgrade (or downgrade) the database schema",
        description="Bring the database schema to a revision (default: the newest).",
    )
    _database_options(migrate)
    migrate.add_argument(
        "--revision", default="head", help="target revision: head (default), base, or an id"
    )
    migrate.set_defaults(handler=run_migrate)

    reindex = subparsers.add_parser(
        "reindex",
        help="rebuild gallery indexes, optionally re-embedding with another model",
        description="Rebuild a gallery's FAISS index from SQL, or re-embed every stored "
        "crop with another recognizer and switch the gallery to it atomically. Running "
        "servers on the same database follow without a restart (they switch in the "
        "background and serve the old index until then); each finds the new model's file "
        "by its SHA-256 in its FACEDB_MODEL_DIR directories.",
    )
    _database_options(reindex)
    reindex.add_argument("--gallery", help="gallery name (default: every gallery)")
    reindex.add_argument("--index", choices=KINDS, help="index kind to use from now on")
    reindex.add_argument(
        "--model", help="recognizer spec to re-embed with (registry name or FAMILY:PATH)"
    )
    reindex.add_argument("--batch-size", type=int, default=32, help="crops per embedder call")
    reindex.set_defaults(handler=run_reindex)


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="JSON settings file (keys as in facedb.config)")
    parser.add_argument("--data-dir", help="database and index directory (FACEDB_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL; default: SQLite in --data-dir")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, data_dir=args.data_dir, database_url=args.database_url)


def run_migrate(args: argparse.Namespace) -> int:
    from facedb.storage.db import current_revision_for_url, migrate

    url = _settings(args).resolved_database_url
    migrate(url, args.revision)
    log.info("database at revision %s", current_revision_for_url(url) or "base (empty)")
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    from facedb.models import resolve_model
    from facedb.storage.catalog import Catalog

    if args.model:
        resolve_model(args.model)  # a bad spec is one error line, before any progress bar
    settings = _settings(args)
    catalog = Catalog.open(
        settings.resolved_database_url, settings.index_dir, snapshot_interval=None
    )
    try:
        names = [args.gallery] if args.gallery else [g.name for g in catalog.list_galleries()]
        for name in names:
            _reindex_one(catalog, name, args)
    finally:
        catalog.close()
    return 0


def _reindex_one(catalog: Catalog, name: str, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from facedb.engine.reindex import reindex_gallery

    with tqdm(desc=name, unit="face", disable=args.model is None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        info = reindex_gallery(
            catalog,
            name,
            recognizer=args.model,
            kind=args.index,
            batch_size=args.batch_size,
            progress=progress,
        )
    kind = next(g["index_kind"] for g in catalog.stats()["galleries"] if g["name"] == name)
    log.info(
        "gallery %r: %d faces, model %s, %s index", name, info.face_count, info.model_name, kind
    )
