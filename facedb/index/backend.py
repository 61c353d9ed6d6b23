"""Index backends: where a gallery's vectors are searched (FAISS in process, or Milvus).

SQL stays the source of truth with every backend: an index is a rebuildable view of the
change log, opened by replaying the log after the index's watermark and rebuilt from SQL
when it cannot be trusted. The catalog talks to a backend only through the two protocols
here, so it never knows which engine answers a search.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from facedb.index.manager import GalleryIndex, GalleryRef, IndexSource, build, open_index, replay
from facedb.index.vector_index import IndexParams, VectorIndex, choose_kind


class IndexBackendError(RuntimeError):
    """The index service could not be reached or refused a request (the message says)."""


FAISS = "faiss"
MILVUS = "milvus"
BACKENDS = (FAISS, MILVUS)


class LiveIndex(Protocol):
    """One gallery's open index: concurrent searches, atomic writes, a durable watermark."""

    ref: GalleryRef

    @property
    def kind(self) -> str: ...

    @property
    def count(self) -> int: ...

    @property
    def watermark(self) -> int: ...

    @property
    def dirty(self) -> bool: ...

    def ids(self) -> np.ndarray: ...

    def search(
        self, queries: np.ndarray, k: int, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (Q, k), best first; empty slots have id -1."""
        ...

    def apply(
        self,
        seq: int | None,
        added_ids: np.ndarray | None = None,
        added_vectors: np.ndarray | None = None,
        removed: np.ndarray | None = None,
    ) -> None:
        """Apply committed SQL changes up to change `seq` (idempotent per face id)."""
        ...

    def snapshot(self) -> bool:
        """Make the state durable with its watermark; True when anything was written."""
        ...

    def discard_snapshot(self) -> None:
        """Forget durable state that still holds removed faces (FAISS files)."""
        ...

    def needs_rebuild(self) -> str | None: ...


class IndexBackend(Protocol):
    """Opens, rebuilds and drops the live indexes of galleries."""

    name: str

    def open(
        self, source: IndexSource, ref: GalleryRef, root: Path, params: IndexParams
    ) -> LiveIndex:
        """Load the durable state, replay the change log; rebuild when anything is off."""
        ...

    def rebuild(
        self, source: IndexSource, live: LiveIndex, write_lock: threading.Lock, params: IndexParams
    ) -> None:
        """Build a fresh index from SQL while `live` serves, then switch atomically."""
        ...

    def switch_model(
        self,
        live: LiveIndex,
        ref: GalleryRef,
        vectors: dict[int, np.ndarray],
        watermark: int,
        params: IndexParams,
    ) -> None:
        """Replace the contents with every face re-embedded by another model."""
        ...

    def drop(self, ref: GalleryRef, root: Path) -> None:
        """The gallery was deleted: remove its index and durable state."""
        ...

    def close(self) -> None: ...


class FaissBackend:
    """FAISS in process: snapshots + watermark on local disk (facedb.index.manager)."""

    name = FAISS

    def open(
        self, source: IndexSource, ref: GalleryRef, root: Path, params: IndexParams
    ) -> GalleryIndex:
        return open_index(source, ref, root, params)

    def rebuild(
        self, source: IndexSource, live: LiveIndex, write_lock: threading.Lock, params: IndexParams
    ) -> None:
        index = _faiss(live)
        ref = index.ref
        fresh, watermark = build(source, ref, params)
        with write_lock:  # no write can slip between the replay and the swap
            watermark = replay(source, ref, fresh, watermark)
            index.replace(ref, fresh, watermark)
        index.snapshot()

    def switch_model(
        self,
        live: LiveIndex,
        ref: GalleryRef,
        vectors: dict[int, np.ndarray],
        watermark: int,
        params: IndexParams,
    ) -> None:
        ids, matrix = id_matrix(vectors, ref.dim)
        kind = choose_kind(len(ids), ref.kind, params)
        _faiss(live).replace(ref, VectorIndex.build(kind, ref.dim, ids, matrix, params), watermark)

    def drop(self, ref: GalleryRef, root: Path) -> None:
        shutil.rmtree(root / ref.uid, ignore_errors=True)

    def close(self) -> None:
        pass


def id_matrix(vectors: dict[int, np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids ascending, (N, dim) float32 rows in the same order) of an id -> vector map."""
    ids = np.fromiter(sorted(vectors), dtype=np.int64, count=len(vectors))
    if not len(ids):
        return ids, np.empty((0, dim), dtype=np.float32)
    return ids, np.stack([vectors[int(i)] for i in ids]).astype(np.float32)


def _faiss(live: LiveIndex) -> GalleryIndex:
    if not isinstance(live, GalleryIndex):
        raise TypeError(f"the FAISS backend cannot manage a {type(live).__name__}")
    return live


def open_backend(name: str, milvus_uri: str | None = None, **options: object) -> IndexBackend:
    """The backend called `name` ("faiss" or "milvus"); ValueError says what is wrong."""
    if name == FAISS:
        return FaissBackend()
    if name == MILVUS:
        if not milvus_uri:
            raise ValueError("the milvus index backend needs --milvus-uri (FACEDB_MILVUS_URI)")
        from facedb.index.milvus_backend import MilvusBackend  # pymilvus only when asked for

        return MilvusBackend(milvus_uri, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown index backend {name!r}: choose one of {', '.join(BACKENDS)}")
