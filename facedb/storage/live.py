"""This process's live indexes, one per gallery, and how they stay current with SQL.

Each gallery name has a `Slot`: the lock that orders this process's loading, writing and
deleting of the gallery, and its `LiveIndex` once loaded. Other processes change the
same tables; `caught_up` applies what they committed after the index's watermark (or
reloads the index when the gallery was created again or re-embedded elsewhere). The catalog
calls it inside its write transaction, under the gallery's SQL write lock, and `current`
before a search when SQL is ahead of the index.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from facedb.index.backend import FaissBackend, IndexBackend, LiveIndex
from facedb.index.manager import GalleryRef, Replay
from facedb.index.vector_index import IndexParams
from facedb.storage import repository as repo
from facedb.storage.db import Database
from facedb.storage.errors import NotFoundError
from facedb.storage.tables import OP_REMOVED, Gallery

log = logging.getLogger(__name__)


@dataclass
class Slot:
    """One gallery name in this process: the lock that orders its loading, writers and
    deletion, and its index once loaded. A slot lives while it holds an index or a thread
    uses it, so that every thread working on one name takes the same lock, and names that
    were never a gallery leave nothing behind."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    index: LiveIndex | None = None
    users: int = 0


class LiveIndexes:
    """The loaded galleries of one process, their locks and background rebuilds."""

    def __init__(
        self,
        db: Database,
        index_dir: Path,
        index_kind: str,
        params: IndexParams,
        backend: IndexBackend | None = None,
    ) -> None:
        self._db = db
        self.backend: IndexBackend = backend or FaissBackend()
        self._index_dir = index_dir
        self._index_kind = index_kind
        self._params = params
        self._source = _SqlIndexSource(db)
        self._galleries: dict[str, Slot] = {}
        self._rebuilds: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()  # guards the two dicts above
        self._closed = threading.Event()
        self._tail = _TailReader(db)

    def close(self) -> None:
        """Start no more background rebuilds; wait for the running ones."""
        self._closed.set()
        self.wait()
        self._tail.close()

    def peek(self, gallery: str) -> LiveIndex | None:
        """The gallery's index if loaded (never loads it)."""
        slot = self._galleries.get(gallery)
        return slot.index if slot is not None else None

    def current(self, session: Session, gallery: str, index: LiveIndex) -> LiveIndex:
        """The index a search should use: caught up first when another process changed the
        gallery since this one last looked (else one cheap query, and no lock)."""
        row, latest = repo.gallery_with_latest_seq(session, gallery)
        ref = index.ref
        if latest <= index.watermark and (ref.uid, ref.model_sha256, ref.dim) == (
            row.uid,
            row.model_sha256,
            row.dim,
        ):
            return index
        with self.locked(gallery) as slot:  # in order with this process's writers
            self.load(slot, gallery)
            # A fresh transaction: what this process's writers did while we waited for the
            # lock is newer than `session`'s view.
            with self._db.read() as fresh:
                return self.caught_up(fresh, slot, repo.get_gallery(fresh, gallery))

    def caught_up(self, session: Session, slot: Slot, row: Gallery) -> LiveIndex:
        """The slot's index with every change committed after its watermark applied (this
        transaction holds the gallery's write lock, so no other writer is in between)."""
        index = slot.index
        assert index is not None
        ref = index.ref
        if (ref.uid, ref.model_sha256, ref.dim) != (row.uid, row.model_sha256, row.dim):
            # Created again or re-embedded by another process: this index is of the past.
            log.info("gallery %r changed in another process: reloading its index", row.name)
            return self._reloaded(session, slot, row)
        changes = _replay(session, ref, index.watermark)
        if changes.watermark > index.watermark:
            index.apply(
                changes.watermark, changes.added_ids, changes.added_vectors, changes.removed
            )
            if len(changes.removed):
                index.discard_snapshot()
        return index

    def apply_notified(self, gallery: str, sequence: int) -> bool:
        """The change follower's fast path, for a NOTIFY that announced change `sequence`:
        nothing when the index already holds it (this process wrote it, or caught up
        meanwhile), else the changes after the watermark applied from ONE query. True when
        done (or the gallery is not loaded here); False when the gallery was deleted,
        re-created or re-embedded: the caller then takes the full path (`current`)."""
        index = self.peek(gallery)
        if index is None or index.watermark >= sequence:
            return True
        with self.locked(gallery) as slot:  # in order with this process's writers
            index = slot.index
            if index is None or index.watermark >= sequence:
                return True
            ref, since = index.ref, index.watermark
            head, rows = self._tail.changes(ref.id, since)
            if head != (ref.uid, ref.model_sha256, ref.dim):
                return False
            changes = _folded(rows, since, ref.dim)
            if changes.watermark > since:
                index.apply(
                    changes.watermark, changes.added_ids, changes.added_vectors, changes.removed
                )
                if len(changes.removed):
                    index.discard_snapshot()  # it still holds the removed embeddings
        return True

    def _reloaded(self, session: Session, slot: Slot, row: Gallery) -> LiveIndex:
        ref = self.ref(row)
        old = slot.index
        if old is not None and old.ref.uid == ref.uid:  # re-embedded: same gallery, new model
            watermark = repo.latest_seq(session, row.id)
            ids, vectors = repo.all_embeddings(session, row.id, row.dim)
            by_id = dict(zip(ids.tolist(), vectors, strict=True))
            prepared = self.backend.prepare_from(ref, by_id, watermark, self._params)
            self.backend.install(old, prepared, None)
            return old
        self.forget(slot)
        slot.index = self.backend.open(self._source, ref, self._index_dir, self._params)
        return slot.index

    @contextmanager
    def locked(self, gallery: str) -> Iterator[Slot]:
        """The gallery's slot, with its lock held."""
        with self._lock:
            slot = self._galleries.setdefault(gallery, Slot())
            slot.users += 1
        try:
            with slot.lock:
                yield slot
        finally:
            with self._lock:
                slot.users -= 1
                if not slot.users and slot.index is None:
                    del self._galleries[gallery]

    def get(self, gallery: str) -> LiveIndex:
        """The gallery's index, loaded on first use (one loader per gallery)."""
        slot = self._galleries.get(gallery)
        index = slot.index if slot is not None else None
        if index is not None:
            return index
        with self.locked(gallery) as slot:
            return self.load(slot, gallery)

    def load(self, slot: Slot, gallery: str) -> LiveIndex:
        """The slot's index, opened if not yet (the caller holds the slot's lock)."""
        if slot.index is None:
            with self._db.read() as session:
                ref = self.ref(repo.get_gallery(session, gallery))
            slot.index = self.backend.open(self._source, ref, self._index_dir, self._params)
        return slot.index

    def forget(self, slot: Slot) -> None:
        """The gallery is gone: drop its index and its files (the caller holds the lock)."""
        index, slot.index = slot.index, None
        if index is not None:
            index.delete()

    def ref(self, row: Gallery) -> GalleryRef:
        kind = row.index_kind or self._index_kind
        return GalleryRef(row.id, row.uid, row.name, row.model_sha256, row.dim, kind)

    def loaded(self) -> list[LiveIndex]:
        with self._lock:
            return [slot.index for slot in self._galleries.values() if slot.index is not None]

    def maintain(self, gallery: str, index: LiveIndex) -> None:
        """Start a background rebuild when the index no longer suits the gallery."""
        reason = index.needs_rebuild()
        if reason is None or self._closed.is_set():
            return
        with self._lock:
            running = self._rebuilds.get(gallery)
            if running is not None and running.is_alive():
                return
            log.info("gallery %r: rebuilding the index in the background: %s", gallery, reason)
            thread = threading.Thread(target=self._rebuild_logged, args=(gallery,), daemon=True)
            self._rebuilds[gallery] = thread
            thread.start()

    def _rebuild_logged(self, gallery: str) -> None:
        try:
            self.rebuild(gallery)
        except NotFoundError:
            pass  # deleted meanwhile
        except Exception:
            log.exception("gallery %r: background rebuild failed", gallery)

    def wait(self) -> None:
        """Wait for background rebuilds to finish (for tools and tests)."""
        with self._lock:
            threads = list(self._rebuilds.values())
        for thread in threads:
            thread.join()

    def rebuild(self, gallery: str) -> None:
        """Build a new index from SQL while the old one serves, then swap it in."""
        index = self.get(gallery)
        ref = index.ref
        prepared = self.backend.prepare(self._source, ref, self._params)
        with self.locked(gallery) as slot:  # no write can slip between the replay and the swap
            if slot.index is not index or index.ref != ref:
                self.backend.discard(prepared)
                return  # deleted, reloaded or re-embedded meanwhile: this build is stale
            self.backend.install(index, prepared, self._source)
        index.snapshot()


class _TailReader:
    """One autocommit connection kept for the change follower's one-query replays: no pool
    checkout, ping, BEGIN or ROLLBACK around it, so a notified change costs one round trip
    (each is several milliseconds on a loaded 2-core machine). One statement is one snapshot."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # one statement at a time on the connection

    def changes(
        self, gallery_id: int, since: int
    ) -> tuple[tuple[str, str, int] | None, list[tuple[int, int, str, bytes | None]]]:
        with self._lock:
            if self._connection is None:
                connection = self._db.engine.connect()
                self._connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                return repo.changes_with_embeddings(self._connection, gallery_id, since)
            except DBAPIError:
                self._close()  # the server restarted or failed over: a new one next time
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(DBAPIError):
                connection.close()


class _SqlIndexSource:
    """The index's view of SQL: change log, embeddings, counts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def replay(self, gallery: GalleryRef, since: int) -> Replay:
        with self._db.snapshot_read() as session:
            return _replay(session, gallery, since)

    def everything(self, gallery: GalleryRef) -> tuple[int, np.ndarray, np.ndarray]:
        with self._db.snapshot_read() as session:
            watermark = repo.latest_seq(session, gallery.id)
            ids, vectors = repo.all_embeddings(session, gallery.id, gallery.dim)
        return watermark, ids, vectors

    def count(self, gallery: GalleryRef) -> int:
        with self._db.read() as session:
            return repo.count_faces(session, gallery.id)


def _replay(session: Session, gallery: GalleryRef, since: int) -> Replay:
    """The change log after `since`, folded to each face's final state, with the vectors of
    the faces added (read in the caller's session, so in one consistent view)."""
    changes = repo.changes_after(session, gallery.id, since)
    final = {face_id: op for _, face_id, op in changes}
    added = [face_id for face_id, op in final.items() if op != OP_REMOVED]
    ids, vectors = repo.embeddings(session, gallery.id, sorted(added), gallery.dim)
    removed = [face_id for face_id, op in final.items() if op == OP_REMOVED]
    watermark = changes[-1][0] if changes else since
    return Replay(watermark, np.asarray(removed, dtype=np.int64), ids, vectors)


def _folded(rows: list[tuple[int, int, str, bytes | None]], since: int, dim: int) -> Replay:
    """`repo.changes_with_embeddings` rows folded to each face's final state (as `_replay`)."""
    final = {face_id: (op, embedding) for _, face_id, op, embedding in rows}
    added: list[tuple[int, bytes]] = []
    for face_id, (op, embedding) in sorted(final.items()):
        if op != OP_REMOVED and embedding is not None:  # None: removed in a later change
            added.append((face_id, embedding))
    removed = [face_id for face_id, (op, _) in final.items() if op == OP_REMOVED]
    ids = np.asarray([face_id for face_id, _ in added], dtype=np.int64)
    vectors = np.empty((len(added), dim), dtype=np.float32)
    for row, (_, embedding) in enumerate(added):
        vectors[row] = repo.decode_embedding(embedding)
    watermark = rows[-1][0] if rows else since
    return Replay(watermark, np.asarray(removed, dtype=np.int64), ids, vectors)
