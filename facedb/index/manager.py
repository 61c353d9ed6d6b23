"""A gallery's live index: load the snapshot, replay the SQL change log, or rebuild.

The SQL side is reached through `IndexSource` (implemented by facedb.storage.catalog),
so this package knows no SQL and no images.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from facedb.index.rwlock import ReadWriteLock
from facedb.index.snapshot import (
    NoSnapshot,
    SnapshotError,
    commit_snapshot,
    discard_snapshot,
    draft_snapshot,
    read_snapshot,
)
from facedb.index.vector_index import (
    AUTO,
    TOMBSTONE_KINDS,
    IndexKind,
    IndexParams,
    VectorIndex,
    choose_kind,
    ivf_nlist,
)

log = logging.getLogger(__name__)

# Rebuild an HNSW / ivf_pq index once this fraction of its vectors are tombstones.
MAX_TOMBSTONE_RATIO = 0.1
# "auto" tiers by size; a gallery moves down a tier only at half the size that moved it up.
_TIER = {IndexKind.FLAT: 0, IndexKind.IVF: 1, IndexKind.IVF_SQ8: 1, IndexKind.IVF_PQ: 2}


@dataclass(frozen=True)
class GalleryRef:
    """What the index needs to know about a gallery."""

    id: int
    uid: str
    name: str
    model_sha256: str
    dim: int
    kind: str  # requested kind, or "auto"


@dataclass(frozen=True)
class Replay:
    """The change log after a watermark, folded to each face's final state."""

    watermark: int
    removed: np.ndarray
    added_ids: np.ndarray
    added_vectors: np.ndarray


class IndexSource(Protocol):
    def replay(self, gallery: GalleryRef, since: int) -> Replay:
        """Changes after `since` (one consistent read), with the added faces' vectors."""
        ...

    def everything(self, gallery: GalleryRef) -> tuple[int, np.ndarray, np.ndarray]:
        """(watermark, ids, vectors) of every face, read in one consistent snapshot."""
        ...

    def count(self, gallery: GalleryRef) -> int: ...


class GalleryIndex:
    """One gallery's index: concurrent searches, exclusive writes, snapshots on demand."""

    def __init__(
        self, ref: GalleryRef, directory: Path, index: VectorIndex, watermark: int
    ) -> None:
        self.ref = ref
        self.directory = directory
        self._index = index
        self._watermark = watermark
        self._lock = ReadWriteLock()
        self._snapshot_lock = threading.Lock()  # one snapshot writer at a time
        self._dirty = True
        self._version = 0  # counts changes, so a snapshot knows what it missed
        self._deleted = False

    @property
    def kind(self) -> IndexKind:
        return self._index.kind

    @property
    def count(self) -> int:
        return self._index.count

    @property
    def watermark(self) -> int:
        return self._watermark

    @property
    def dirty(self) -> bool:
        return self._dirty

    def ids(self) -> np.ndarray:
        with self._lock.read():
            return self._index.ids()

    def search(
        self, queries: np.ndarray, k: int, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self._lock.read():
            return self._index.search(queries, k, threshold)

    def apply(
        self,
        seq: int | None,
        added_ids: np.ndarray | None = None,
        added_vectors: np.ndarray | None = None,
        removed: np.ndarray | None = None,
    ) -> None:
        """Apply committed SQL changes (up to change `seq`) atomically for readers."""
        with self._lock.write():
            if removed is not None and len(removed):
                self._index.remove(removed)
            if added_ids is not None and added_vectors is not None and len(added_ids):
                self._index.add(added_ids, added_vectors)
            if seq is not None:
                self._watermark = max(self._watermark, seq)
            self._dirty = True
            self._version += 1

    def replace(self, ref: GalleryRef, index: VectorIndex, watermark: int) -> None:
        """Swap in a rebuilt index: readers see the old one or the new one, never a mix."""
        with self._lock.write():
            self.ref, self._index, self._watermark = ref, index, watermark
            self._dirty = True
            self._version += 1

    def snapshot(self) -> bool:
        """Write the snapshot if anything changed since the last one; True when written.

        The index is held only while its file is written to the page cache; the fsync,
        checksum and manifest (most of the time: seconds at 100k faces on a busy disk) run
        without it, so writers and the searches queued behind them do not wait for them. A
        removal meanwhile waits for the snapshot (`discard_snapshot` takes the snapshot
        lock), then deletes it."""
        with self._snapshot_lock:
            with self._lock.read():
                if not self._dirty or self._deleted:
                    return False
                draft = draft_snapshot(self.directory, self._index)
                ref, watermark, version = self.ref, self._watermark, self._version
            commit_snapshot(
                draft, gallery_uid=ref.uid, model_sha256=ref.model_sha256, watermark=watermark
            )
            with self._lock.write():
                self._dirty = self._version != version  # changed while being written
        return True

    def discard_snapshot(self) -> None:
        """Delete the snapshot now (it holds a removed face); the next flush rewrites it."""
        with self._snapshot_lock, self._lock.write():
            if not self._deleted:
                discard_snapshot(self.directory)
                self._dirty = True
                self._version += 1

    def delete(self) -> None:
        """The gallery is gone: delete its directory and never write a snapshot again (a
        flush or background rebuild still holding this index must not bring it back)."""
        with self._snapshot_lock, self._lock.write():
            self._deleted = True
            shutil.rmtree(self.directory, ignore_errors=True)

    def needs_rebuild(self) -> str | None:
        """Why the index should be rebuilt (kind no longer fits the size, tombstones)."""
        index = self._index
        if index.kind in TOMBSTONE_KINDS and index.tombstone_ratio > MAX_TOMBSTONE_RATIO:
            return f"{len(index.tombstones)} removed vectors still held by the {index.kind} index"
        wanted = choose_kind(index.count, self.ref.kind, index.params)
        if wanted != index.kind and not self._hysteresis_holds(wanted):
            return f"{index.count} vectors: {wanted} suits better than {index.kind}"
        if index.nlist and ivf_nlist(index.count, index.params) > 2 * index.nlist:
            return f"{index.count} vectors outgrew {index.nlist} IVF lists"
        return None

    def _hysteresis_holds(self, wanted: IndexKind) -> bool:
        """True while an "auto" index that shrank below its tier's switch size is still above
        half of it: a gallery hovering around a threshold is not rebuilt back and forth."""
        index = self._index
        if self.ref.kind != AUTO or wanted not in _TIER or index.kind not in _TIER:
            return False
        if _TIER[wanted] >= _TIER[index.kind]:
            return False  # growing: switch at once
        switch = index.params.flat_max if _TIER[wanted] == 0 else index.params.ivf_max
        return index.count > switch // 2


def open_index(
    source: IndexSource, ref: GalleryRef, root: Path, params: IndexParams
) -> GalleryIndex:
    """Load the snapshot and replay the change log; rebuild from SQL if anything is off."""
    directory = root / ref.uid
    try:
        index, manifest = read_snapshot(
            directory,
            gallery_uid=ref.uid,
            model_sha256=ref.model_sha256,
            dim=ref.dim,
            params=params,
        )
    except SnapshotError as error:
        level = logging.INFO if isinstance(error, NoSnapshot) else logging.WARNING
        log.log(level, "gallery %r: rebuilding index from SQL (%s)", ref.name, error)
        return rebuilt(source, ref, directory, params)
    if ref.kind != AUTO and index.kind != choose_kind(index.count, ref.kind, params):
        log.warning(
            "gallery %r: snapshot is %s, %s requested: rebuilding", ref.name, index.kind, ref.kind
        )
        return rebuilt(source, ref, directory, params)
    watermark = replay(source, ref, index, manifest.watermark)
    expected = source.count(ref)
    if index.count != expected:
        log.warning(
            "gallery %r: index holds %d faces after replay, SQL %d: rebuilding",
            ref.name,
            index.count,
            expected,
        )
        return rebuilt(source, ref, directory, params)
    log.info(
        "gallery %r: loaded %s snapshot at change %d, replayed to %d (%d faces)",
        ref.name,
        index.kind,
        manifest.watermark,
        watermark,
        index.count,
    )
    gallery_index = GalleryIndex(ref, directory, index, watermark)
    if watermark == manifest.watermark:
        gallery_index._dirty = False  # the snapshot on disk is already current
    return gallery_index


def rebuilt(
    source: IndexSource, ref: GalleryRef, directory: Path, params: IndexParams
) -> GalleryIndex:
    index, watermark = build(source, ref, params)
    gallery_index = GalleryIndex(ref, directory, index, watermark)
    gallery_index.snapshot()
    return gallery_index


def build(
    source: IndexSource, ref: GalleryRef, params: IndexParams, kind: str | None = None
) -> tuple[VectorIndex, int]:
    """A fresh index of every face in SQL, and the change watermark it reflects."""
    watermark, ids, vectors = source.everything(ref)
    chosen = choose_kind(len(ids), kind or ref.kind, params)
    log.info("gallery %r: building %s index of %d faces", ref.name, chosen, len(ids))
    return VectorIndex.build(chosen, ref.dim, ids, vectors, params), watermark


def replay(source: IndexSource, ref: GalleryRef, index: VectorIndex, since: int) -> int:
    """Apply the change log after `since` to `index`; returns the new watermark."""
    changes = source.replay(ref, since)
    index.remove(changes.removed)
    index.add(changes.added_ids, changes.added_vectors)
    return changes.watermark
