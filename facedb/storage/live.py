"""This process's live indexes, one per gallery, and how they stay current with SQL.

Each gallery name has a `Slot`: the lock that orders this process's loading, writing and
deleting of the gallery, and its `LiveIndex` once loaded. Other processes change the
same tables; `caught_up` applies what they committed after the index's watermark (or
reloads the index when the gallery was created again elsewhere). The catalog calls it
inside its write transaction, under the gallery's SQL write lock, and `current` before a
search when SQL is ahead of the index.

Live reindex: when the gallery row names another model or index kind than the loaded index
(a reindex by another process), `current` starts a background switch (`rebuild`: the new
index built from SQL with no lock held, then installed under the slot lock with the changes
committed meanwhile) and keeps answering from the old index until then. A write meanwhile
must not add old-model vectors: `caught_up` raises `SwitchingError` on a model change.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
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
from facedb.storage.errors import NotFoundError, SwitchingError
from facedb.storage.labels import (
    GalleryLabels,
    LabelChanges,
    load_labels,
    read_changes,
    tail_changes,
)
from facedb.storage.tables import OP_ADDED, OP_REMOVED, Gallery

log = logging.getLogger(__name__)

# What differs between a loaded index and its gallery row (`_change`).
RECREATED, MODEL, KIND = "recreated", "model", "kind"
# A rebuild whose target changed while it built (another reindex) starts over this often.
REBUILD_ATTEMPTS = 3


@dataclass
class Slot:
    """One gallery name in this process: the lock that orders its loading, writers and
    deletion, and its index once loaded. A slot lives while it holds an index or a thread
    uses it, so that every thread working on one name takes the same lock, and names that
    were never a gallery leave nothing behind."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    index: LiveIndex | None = None
    labels: GalleryLabels | None = None  # loaded with the index, following the same log
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
        # Called (in the switching thread) with a model's SHA-256 before this process
        # switches a gallery to it: the engine loads that recognizer before probes need it.
        self.before_switch: Callable[[str], None] | None = None

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
        gallery since this one last looked (else one cheap query, and no lock). While a
        switch to another model runs in the background, the old index serves as it is."""
        row, latest = repo.gallery_with_latest_seq(session, gallery)
        change = self._change(index, row)
        if change in (MODEL, KIND):
            self.switch(gallery)
        slot = self._galleries.get(gallery)
        labels = slot.labels if slot is not None else None
        if labels is not None and labels.uid == row.uid:
            labels.set_gallery(repo.gallery_info(row))  # settings change no change row
        if change == MODEL or (
            change is None
            and labels is not None
            and labels.uid == row.uid
            and latest <= min(index.watermark, labels.watermark)
        ):
            return index
        with self.locked(gallery) as slot:  # in order with this process's writers
            self.load(slot, gallery)
            # A fresh transaction: what this process's writers did while we waited for the
            # lock is newer than `session`'s view.
            with self._db.read() as fresh:
                try:
                    return self.caught_up(fresh, slot, repo.get_gallery(fresh, gallery))
                except SwitchingError:  # switched in SQL while we waited for the lock
                    assert slot.index is not None
                    return slot.index

    def caught_up(self, session: Session, slot: Slot, row: Gallery) -> LiveIndex:
        """The slot's index with every change committed after its watermark applied (this
        transaction holds the gallery's write lock, so no other writer is in between).
        SwitchingError when the row names another model: the background switch must come
        first (the change log after the watermark holds vectors of the new model)."""
        index = slot.index
        assert index is not None
        change = self._change(index, row)
        if change == RECREATED:
            log.info("gallery %r was created again in another process: reloading", row.name)
            index = self._reloaded(slot, row)
        elif change is not None:
            self.switch(row.name)
        if change == MODEL:
            raise SwitchingError(
                f"gallery {row.name!r} is switching to model {row.model_name} "
                f"(sha256 {row.model_sha256[:12]}…) on this server; retry in a moment"
            )
        labels = self._labels(session, slot, row)
        # One read of the log for both (their watermarks differ only after a reload).
        changes, relabels = _replays(session, index.ref, min(index.watermark, labels.watermark))
        labels.apply(relabels)  # labels first: see facedb.storage.labels
        _apply(index, changes)
        return index

    def apply_notified(self, gallery: str, sequence: int) -> bool:
        """The change follower's fast path, for a NOTIFY that announced change `sequence`:
        nothing (no SQL) when the index and labels already hold it (this process wrote it,
        or caught up meanwhile), else ONE statement on the follower's own autocommit
        connection (`repo.changes_with_labels`: the gallery row and the changes after the
        older watermark with their faces' embeddings and identities' labels, one snapshot),
        applied to the labels, then the index, as `caught_up` does. True when done (or the
        gallery is not loaded here); False when the gallery was deleted, re-created or
        switched to another model or kind (or its labels are not loaded): the caller then
        takes the full path (`current`, which starts the switch)."""
        if self._holds(self._galleries.get(gallery), sequence):
            return True
        with self.locked(gallery) as slot:  # in order with this process's writers
            index, labels = slot.index, slot.labels
            if index is None or self._holds(slot, sequence):
                return True
            if labels is None or labels.uid != index.ref.uid:
                return False
            since = min(index.watermark, labels.watermark)
            with self._tail.session() as session:
                row, tail = repo.changes_with_labels(session, index.ref.id, since)
                if row is None or self._change(index, row) is not None:
                    return False
                labels.set_gallery(repo.gallery_info(row))  # settings change no change row
            labels.apply(tail_changes(tail, since))  # labels first: see facedb.storage.labels
            _apply(index, _tail_replay(tail, since, index.ref.dim))
        return True

    @staticmethod
    def _holds(slot: Slot | None, sequence: int) -> bool:
        """Whether the slot's index and labels (if loaded) reflect change `sequence`."""
        if slot is None or slot.index is None:
            return True
        labels = slot.labels
        return slot.index.watermark >= sequence and (labels is None or labels.watermark >= sequence)

    def _change(self, index: LiveIndex, row: Gallery) -> str | None:
        """How the gallery row differs from what the loaded index was built for."""
        ref, wanted = index.ref, self.ref(row)
        if ref.uid != wanted.uid:
            return RECREATED
        if (ref.model_sha256, ref.dim) != (wanted.model_sha256, wanted.dim):
            return MODEL
        if ref.kind != wanted.kind:
            return KIND
        return None

    def _labels(self, session: Session, slot: Slot, row: Gallery) -> GalleryLabels:
        """The slot's labels, (re)loaded in `session` when missing or of another gallery of
        that name, with the gallery's row as read now."""
        info = repo.gallery_info(row)
        if slot.labels is None or slot.labels.uid != row.uid:
            slot.labels = load_labels(session, info, repo.latest_seq(session, row.id))
        slot.labels.set_gallery(info)
        return slot.labels

    def _labels_caught_up(self, slot: Slot, gallery: str) -> None:
        """Apply the change log to the slot's labels alone (after an install replayed it to
        the index; a follower running no catch-up of its own would leave them behind)."""
        with self._db.read() as session:
            labels = self._labels(session, slot, repo.get_gallery(session, gallery))
            assert slot.index is not None
            _, relabels = _replays(session, slot.index.ref, labels.watermark)
            labels.apply(relabels)

    def labels(self, gallery: str) -> GalleryLabels:
        """The gallery's labels, loaded (with its index) on first use."""
        slot = self._galleries.get(gallery)
        labels = slot.labels if slot is not None else None
        if labels is not None:
            return labels
        with self.locked(gallery) as slot:
            self.load(slot, gallery)
            assert slot.labels is not None
            return slot.labels

    def _reloaded(self, slot: Slot, row: Gallery) -> LiveIndex:
        self.forget(slot)
        slot.index = self.backend.open(self._source, self.ref(row), self._index_dir, self._params)
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
        if slot.labels is None:
            # Its own snapshot: the first catch-up replays from the older of the watermarks.
            with self._db.snapshot_read() as session:
                self._labels(session, slot, repo.get_gallery(session, gallery))
        return slot.index

    def forget(self, slot: Slot) -> None:
        """The gallery is gone: drop its index and its files (the caller holds the lock)."""
        index, slot.index, slot.labels = slot.index, None, None
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
        if reason is not None:
            self._start_rebuild(gallery, reason)

    def switch(self, gallery: str) -> None:
        """Start switching the gallery's index to the model / kind its row names now."""
        self._start_rebuild(gallery, "its model or index kind changed in SQL", changed_only=True)

    def settle(self, gallery: str, timeout: float) -> None:
        """Wait up to `timeout` for a running background rebuild of the gallery."""
        with self._lock:
            running = self._rebuilds.get(gallery)
        if running is not None and running is not threading.current_thread():
            running.join(timeout)

    def _start_rebuild(self, gallery: str, reason: str, changed_only: bool = False) -> None:
        if self._closed.is_set():
            return
        with self._lock:
            running = self._rebuilds.get(gallery)
            if running is not None and running.is_alive():
                return  # it re-reads the gallery row before it installs
            log.info("gallery %r: rebuilding the index in the background: %s", gallery, reason)
            thread = threading.Thread(
                target=self._rebuild_logged, args=(gallery, changed_only), daemon=True
            )
            self._rebuilds[gallery] = thread
            thread.start()

    def _rebuild_logged(self, gallery: str, changed_only: bool) -> None:
        try:
            self.rebuild(gallery, changed_only)
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

    def rebuild(self, gallery: str, changed_only: bool = False) -> None:
        """Build a new index from SQL while the old one serves, then swap it in: of the
        model and kind the gallery row names (a switch, when another process reindexed).
        `changed_only`: nothing to do when the index is already of that model and kind."""
        for _ in range(REBUILD_ATTEMPTS):
            index = self.get(gallery)
            ref = self._wanted(gallery)
            if ref.uid != index.ref.uid or (changed_only and ref == index.ref):
                return  # created again elsewhere (the next catch-up reloads it), or done
            if ref.model_sha256 != index.ref.model_sha256:
                self._prepare_model(ref)
            prepared = self.backend.prepare(self._source, ref, self._params)
            with self.locked(gallery) as slot:  # no write can slip between replay and swap
                current = slot.index is index and self._wanted(gallery) == ref
                if current and not (changed_only and index.ref == ref):
                    self.backend.install(index, prepared, self._source)
                    self._labels_caught_up(slot, gallery)  # to what the install replayed
                else:  # stale, or this process's own reindex switched it meanwhile
                    self.backend.discard(prepared)
            if slot.index is not index:
                return  # deleted or reloaded meanwhile
            if index.ref == ref:
                break
            # else reindexed again while we built: build what the row names now
        index.snapshot()

    def _prepare_model(self, ref: GalleryRef) -> None:
        if self.before_switch is None:
            return
        try:
            self.before_switch(ref.model_sha256)
        except Exception as error:  # the switch goes on: SQL holds only the new vectors
            log.warning("gallery %r: model %s not loaded: %s", ref.name, ref.model_sha256, error)

    def _wanted(self, gallery: str) -> GalleryRef:
        with self._db.read() as session:
            return self.ref(repo.get_gallery(session, gallery))


class _TailReader:
    """One autocommit connection kept for the change follower's catch-ups: no pool checkout,
    ping, BEGIN or ROLLBACK around them (each round trip is several milliseconds on a
    loaded 2-core machine). Each statement reads the latest committed state, as in the
    catalog's read transactions (READ COMMITTED)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # one user at a time on the connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._lock:
            if self._connection is None:
                connection = self._db.engine.connect()
                self._connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                with Session(bind=self._connection) as session:
                    yield session
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


def _replays(session: Session, gallery: GalleryRef, since: int) -> tuple[Replay, LabelChanges]:
    """The change log after `since` for the index and for the labels, in one view."""
    changes = repo.changes_after(session, gallery.id, since)
    relabels = read_changes(session, gallery.id, changes, since)
    return _replay(session, gallery, since, changes), relabels


def _replay(
    session: Session, gallery: GalleryRef, since: int, changes: repo.ChangeRows | None = None
) -> Replay:
    """The change log after `since`, folded to each face's final state, with the vectors of
    the faces added (read in the caller's session, so in one consistent view)."""
    if changes is None:
        changes = repo.changes_after(session, gallery.id, since)
    final = {face_id: op for _, face_id, op, _ in changes if face_id is not None}
    added = [face_id for face_id, op in final.items() if op != OP_REMOVED]
    ids, vectors = repo.embeddings(session, gallery.id, sorted(added), gallery.dim)
    removed = [face_id for face_id, op in final.items() if op == OP_REMOVED]
    watermark = changes[-1][0] if changes else since
    return Replay(watermark, np.asarray(removed, dtype=np.int64), ids, vectors)


def _tail_replay(rows: list[repo.TailRow], since: int, dim: int) -> Replay:
    """The follower's one-statement rows folded for the index as `_replay` folds the log:
    each face's final op; an added face gone since (no embedding) is neither added nor
    removed (its later removal row says so, or it never reached this index)."""
    final = {row.face_id: row for row in rows if row.face_id is not None}
    added = sorted(
        (face_id, row.embedding)
        for face_id, row in final.items()
        if row.op == OP_ADDED and row.embedding is not None
    )
    removed = [face_id for face_id, row in final.items() if row.op == OP_REMOVED]
    vectors = np.empty((len(added), dim), dtype=np.float32)
    for at, (_, embedding) in enumerate(added):
        vectors[at] = repo.decode_embedding(embedding)
    ids = np.asarray([face_id for face_id, _ in added], dtype=np.int64)
    watermark = rows[-1].seq if rows else since
    return Replay(watermark, np.asarray(removed, dtype=np.int64), ids, vectors)


def _apply(index: LiveIndex, changes: Replay) -> None:
    """Apply a replay newer than the index's watermark (labels already have it)."""
    if changes.watermark > index.watermark:
        index.apply(changes.watermark, changes.added_ids, changes.added_vectors, changes.removed)
        if len(changes.removed):
            index.discard_snapshot()  # it still holds the removed embeddings
