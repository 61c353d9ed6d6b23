"""Index backends: where a gallery's vectors are searched (FAISS in process, or Milvus).

SQL stays the source of truth with every backend: an index is a rebuildable view of the
change log, opened by replaying the log after the index's watermark and rebuilt from SQL
when it cannot be trusted. The catalog talks to a backend only through the two protocols
here, so it never knows which engine answers a search.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facedb.index.manager import GalleryIndex, GalleryRef, IndexSource, build, open_index, replay
from facedb.index.vector_index import IndexKind, IndexParams, VectorIndex, choose_kind


class IndexBackendError(RuntimeError):
    """The index service could not be reached or refused a request (the message says)."""


FAISS = "faiss"
MILVUS = "milvus"
BACKENDS = (FAISS, MILVUS)


class LiveIndex(Protocol):
    """One gallery's open index: concurrent searches, atomic writes, a durable watermark."""

    ref: GalleryRef

    @property
    def kind(self) -> IndexKind: ...

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

    def delete(self) -> None:
        """The gallery is gone: drop the index's durable state; never write it again."""
        ...


@dataclass
class Prepared:
    """An index built for a gallery and not yet serving: the backend's own handle."""

    ref: GalleryRef
    watermark: int
    handle: Any


class IndexBackend(Protocol):
    """Opens, rebuilds and drops the live indexes of galleries."""

    name: str

    def open(
        self, source: IndexSource, ref: GalleryRef, root: Path, params: IndexParams
    ) -> LiveIndex:
        """Load the durable state, replay the change log; rebuild when anything is off."""
        ...

    def prepare(self, source: IndexSource, ref: GalleryRef, params: IndexParams) -> Prepared:
        """A fresh index of every face in SQL, built while the live one serves (slow; the
        caller holds no lock). Install it with `install`, or `discard` it."""
        ...

    def prepare_from(
        self,
        ref: GalleryRef,
        vectors: dict[int, np.ndarray],
        watermark: int,
        params: IndexParams,
    ) -> Prepared:
        """A fresh index of exactly `vectors` (a model switch), reflecting `watermark`."""
        ...

    def install(self, live: LiveIndex, prepared: Prepared, source: IndexSource | None) -> None:
        """Switch `live` to `prepared` atomically for readers, first replaying the changes
        committed since it was prepared when `source` is given (the caller holds the
        gallery's lock, so that no write slips in between)."""
        ...

    def discard(self, prepared: Prepared) -> None:
        """Free a prepared index that will not be installed (it went stale)."""
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

    def prepare(self, source: IndexSource, ref: GalleryRef, params: IndexParams) -> Prepared:
        index, watermark = build(source, ref, params)
        return Prepared(ref, watermark, index)

    def prepare_from(
        self,
        ref: GalleryRef,
        vectors: dict[int, np.ndarray],
        watermark: int,
        params: IndexParams,
    ) -> Prepared:
        ids, matrix = id_matrix(vectors, ref.dim)
        kind = choose_kind(len(ids), ref.kind, params)
        return Prepared(ref, watermark, VectorIndex.build(kind, ref.dim, ids, matrix, params))

    def install(self, live: LiveIndex, prepared: Prepared, source: IndexSource | None) -> None:
        index: VectorIndex = prepared.handle
        watermark = prepared.watermark
        if source is not None:
            watermark = replay(source, prepared.ref, index, watermark)
        _faiss(live).replace(prepared.ref, index, watermark)

    def discard(self, prepared: Prepared) -> None:
        pass  # freed with the object

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
