"""Reindex: rebuild a gallery's index from SQL, or re-embed its stored crops with another
recognizer and switch the gallery to that model (the catalog makes the switch atomic).

Used by `Engine.reindex` (the service's Reindex RPC) and by `facedb reindex` (offline, no
engine: only the new recognizer is loaded). Either way every running server follows: it
sees the gallery row's new model or kind in the change log catch-up and switches its own
index in the background (facedb.storage.live), serving the old one until then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facedb.engine.errors import (
    AbortedError,
    FailedPreconditionError,
    InvalidRequestError,
    first_control_character,
    store_errors,
)
from facedb.models.errors import ModelSpecError, ModelUnavailableError
from facedb.models.families import FAMILIES
from facedb.storage.catalog import INDEX_KINDS, Catalog
from facedb.storage.records import GalleryInfo, ModelInfo
from facedb.vision.crops import decode_crops_png
from facedb.vision.embed import Embedder, load_embedder

Progress = Callable[[int, int], None]  # (faces done, faces in all)
DEFAULT_BATCH_SIZE = 64
MAX_BATCH_SIZE = 1024
MAX_SPEC_CHARS = 1024


def check_reindex_request(recognizer: str | None, kind: str | None, batch_size: int) -> None:
    """INVALID_ARGUMENT for a malformed request, before anything is loaded or read."""
    if recognizer:
        if len(recognizer) > MAX_SPEC_CHARS:
            raise InvalidRequestError(
                f"recognizer is {len(recognizer):,} characters long; the limit is {MAX_SPEC_CHARS}"
            )
        bad = first_control_character(recognizer)
        if bad is not None:
            raise InvalidRequestError(f"recognizer contains the control character {bad!r}")
    if kind is not None and kind not in INDEX_KINDS:
        raise InvalidRequestError(f"index kind {kind!r} is not one of {', '.join(INDEX_KINDS)}")
    if not 0 < batch_size <= MAX_BATCH_SIZE:
        raise InvalidRequestError(f"batch size must be 1 to {MAX_BATCH_SIZE}, got {batch_size}")


def load_recognizer(spec: str, threads: int | None = None, graph: str | None = None) -> Embedder:
    """The recognizer to re-embed with (`graph` as for `load_embedder`): INVALID_ARGUMENT
    for a spec that names no recognizer, FAILED_PRECONDITION for one whose file is not on
    this machine."""
    family, sep, rest = spec.partition(":")
    if sep and family.lower() in FAMILIES and not Path(rest.partition("?")[0]).is_file():
        raise FailedPreconditionError(f"recognizer file not found on the server: {rest}")
    try:
        return load_embedder(spec, threads=threads, graph=graph)
    except ModelUnavailableError as error:
        raise FailedPreconditionError(str(error)) from error
    except ModelSpecError as error:
        raise InvalidRequestError(f"recognizer {spec!r}: {error}") from error


class RunningReindexes:
    """The galleries a reindex runs for in this process: a second one is ABORTED."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[str] = set()

    @contextmanager
    def claim(self, gallery: str) -> Iterator[None]:
        with self._lock:
            if gallery in self._running:
                raise AbortedError(f"a reindex of gallery {gallery!r} already runs on this server")
            self._running.add(gallery)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(gallery)


def reindex_gallery(
    catalog: Catalog,
    gallery: str,
    *,
    recognizer: str | None = None,
    kind: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    threads: int | None = None,
    embedder: Embedder | None = None,
) -> GalleryInfo:
    """Rebuild `gallery`'s index (as `kind` when given), re-embedding its crops first when
    `recognizer` (a model spec) or an already loaded `embedder` is given."""
    if embedder is None and recognizer:
        embedder = load_embedder(recognizer, threads=threads)
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
