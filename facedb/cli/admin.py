"""`facedb migrate` and `facedb reindex`: schema revisions and index rebuilds.

Run `facedb reindex` while the server is stopped (or use the service's reindex call): a
running server keeps serving the index it loaded.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import numpy as np

from facedb.config import load_settings
from facedb.index.vector_index import AUTO, IndexKind

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
        "crop with another recognizer and switch the gallery to it atomically.",
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


def _settings(args: argparse.Namespace):
    return load_settings(args.config, data_dir=args.data_dir, database_url=args.database_url)


def run_migrate(args: argparse.Namespace) -> int:
    from facedb.storage.db import current_revision_for_url, migrate

    url = _settings(args).resolved_database_url
    migrate(url, args.revision)
    log.info("database at revision %s", current_revision_for_url(url) or "base (empty)")
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    from facedb.storage.catalog import Catalog

    settings = _settings(args)
    catalog = Catalog.open(
        settings.resolved_database_url, settings.index_dir, snapshot_interval=None
    )
    try:
        names = [args.gallery] if args.gallery else [g.name for g in catalog.list_galleries()]
        model, embed_crops = _embedder(args.model) if args.model else (None, None)
        for name in names:
            _reindex_one(catalog, name, args, model, embed_crops)
    finally:
        catalog.close()
    return 0


def _reindex_one(catalog, name: str, args: argparse.Namespace, model, embed_crops) -> None:
    from tqdm import tqdm

    with tqdm(desc=name, unit="face", disable=model is None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        info = catalog.reindex(
            name,
            kind=args.index,
            model=model,
            embed_crops=embed_crops,
            batch_size=args.batch_size,
            progress=progress,
        )
    kind = next(g["index_kind"] for g in catalog.stats()["galleries"] if g["name"] == name)
    log.info(
        "gallery %r: %d faces, model %s, %s index", name, info.face_count, info.model_name, kind
    )


def _embedder(spec: str) -> tuple[object, Callable[[list[bytes]], np.ndarray]]:
    """The new model's identity and a function from stored crops (PNG bytes) to vectors."""
    import cv2

    from facedb.storage.records import ModelInfo
    from facedb.vision.embed import load_embedder

    embedder = load_embedder(spec)

    def embed_crops(crops: list[bytes]) -> np.ndarray:
        images = [cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR) for crop in crops]
        if any(image is None for image in images):
            raise ValueError("a stored crop is not a decodable image")
        return embedder.embed(np.stack(images))

    return ModelInfo(embedder.name, embedder.sha256, int(embedder.dim)), embed_crops
