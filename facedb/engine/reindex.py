"""Reindex: rebuild a gallery's index from SQL, or re-embed its stored crops with another
recognizer and switch the gallery to that model (the catalog makes the switch atomic).

Used by `Engine.reindex` (the service) and by `facedb reindex` (offline, no engine: only
the new recognizer is loaded).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facedb.engine.errors import store_errors
from facedb.storage.catalog import Catalog
from facedb.storage.records import GalleryInfo, ModelInfo
from facedb.vision.crops import decode_crops_png
from facedb.vision.embed import Embedder, load_embedder

Progress = Callable[[int, int], None]  # (faces done, faces in all)
DEFAULT_BATCH_SIZE = 64


def reindex_gallery(
    catalog: Catalog,
    gallery: str,
    *,
    recognizer: str | None = None,
    kind: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    threads: int | None = None,
) -> GalleryInfo:
    """Rebuild `gallery`'s index (as `kind` when given), re-embedding its crops first when
    `recognizer` (a model spec) is given."""
    embedder = load_embedder(recognizer, threads=threads) if recognizer else None
    model = None if embedder is None else model_info(embedder)
    embed_crops = None if embedder is None else crop_embedder(embedder)
    with store_errors():
        return catalog.reindex(
            gallery,
            kind=kind,
            model=model,
            embed_crops=embed_crops,
            batch_size=batch_size,
            progress=progress,
        )


def model_info(embedder: Embedder) -> ModelInfo:
    return ModelInfo(embedder.name, embedder.sha256, int(embedder.dim))


def crop_embedder(embedder: Embedder) -> Callable[[list[bytes]], np.ndarray]:
    """Stored PNG crops → embeddings with `embedder`."""

    def embed(crops: list[bytes]) -> np.ndarray:
        return embedder.embed(decode_crops_png(crops))

    return embed
