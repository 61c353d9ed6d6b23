"""The durable face catalog: SQL store + one FAISS index per gallery.

This is the only place that writes both, and every write takes the same path (`_writing`):

1. this process's lock of the gallery (orders its threads; also guards loading, deletion),
2. one SQL write transaction that takes the gallery's write lock (PostgreSQL: an advisory
   lock per gallery; SQLite: BEGIN IMMEDIATE, the single writer) and reads the gallery row,
3. the index caught up with the change log: faces other processes committed after its
   watermark are applied, so the checks that follow (model, duplicates) see every face,
4. those checks and the SQL writes, then COMMIT,
5. the same change applied to this process's index.

A crash between 4 and 5 is repaired on the next open, which replays the change log after
the snapshot's watermark. Searches run concurrently with each other and see an index state
either before or after a write; a search first catches up when SQL holds changes another
process made (`LiveIndexes.current`: one query when there are none).

A removal also deletes the gallery's snapshot file at once (it still holds the removed
embedding); the next flush (periodic, or on close) writes a fresh one. A deleted gallery's
directory goes at once, and its index never writes a snapshot again.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facedb.index.backend import IndexBackend, LiveIndex
from facedb.index.manager import GalleryRef
from facedb.index.vector_index import AUTO, IndexKind, IndexParams
from facedb.storage import repository as repo
from facedb.storage.db import Database, check_schema, is_sqlite, migrate
from facedb.storage.errors import (
    ConflictError,
    InvalidArgumentError,
    ModelSwitchedError,
    NotFoundError,
    SwitchingError,
)
from facedb.storage.follower import CHANNEL, ChangeFollower, payload
from facedb.storage.labels import GalleryLabels, IdentityLabel, LabelChanges, label_of
from facedb.storage.live import LiveIndexes
from facedb.storage.page_tokens import decode_page_token, encode_page_token
from facedb.storage.records import (
    DuplicateOf,
    EnrollOutcome,
    EnrollRequest,
    Erasure,
    FaceInfo,
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    Hit,
    IdentityInfo,
    ModelInfo,
    NewFace,
)
from facedb.storage.tables import Gallery

__all__ = [
    "Catalog",
    "DuplicateOf",
    "EnrollOutcome",
    "EnrollRequest",
    "FaceInfo",
    "GalleryConfig",
    "GalleryInfo",
    "GallerySettings",
    "Hit",
    "IdentityInfo",
    "ModelInfo",
    "NewFace",
]

log = logging.getLogger(__name__)
WAIT_POLL_S = 0.005  # wait_for re-reads SQL this often (a standby replays in ~10 ms)
# An enroll that finds its gallery switching to another model (a reindex elsewhere) waits
# this long for this process's background switch, then retries once (else UNAVAILABLE).
SWITCH_WAIT_S = 10.0

EmbedCrops = Callable[[list[bytes]], np.ndarray]
Progress = Callable[[int, int], None]  # (done, total)
INDEX_KINDS = (AUTO, *(kind.value for kind in IndexKind))


@dataclass
class _Write:
    """One write transaction on a gallery: the session, the locked gallery row, the index
    and labels (caught up), and the change to apply to them once SQL has committed."""

    session: Session
    row: Gallery
    index: LiveIndex
    labels: GalleryLabels
    seq: int | None = None
    relabels: LabelChanges | None = None
    gallery: GalleryInfo | None = None  # the row as this transaction leaves it
    added_ids: np.ndarray | None = None
    added_vectors: np.ndarray | None = None
    removed: np.ndarray | None = None
    new_ref: GalleryRef | None = None
    replacement: Callable[[], None] | None = None  # switches the index (a new model)

    def add(self, seq: int | None, ids: Sequence[int], vectors: np.ndarray) -> None:
        self.seq, self.added_ids, self.added_vectors = seq, np.asarray(ids, np.int64), vectors

    def remove(self, seq: int | None, ids: Sequence[int]) -> None:
        self.seq, self.removed = seq, np.asarray(ids, dtype=np.int64)

    def relabel(self, seq: int | None, changes: LabelChanges) -> None:
        self.seq, self.relabels = seq, changes

    def apply(self) -> None:
        """Called after the commit, still under the gallery's lock. Labels go first: a
        face is labelled before the index returns it and unlabelled before it forgets it."""
        if self.relabels is not None:
            self.labels.apply(self.relabels)
        if self.gallery is not None:
            self.labels.set_gallery(self.gallery)
        if self.replacement is not None:
            self.replacement()
        if self.new_ref is not None:
            self.index.ref = self.new_ref
        if self.seq is not None:
            self.index.apply(self.seq, self.added_ids, self.added_vectors, self.removed)
        if self.removed is not None and len(self.removed):
            self.index.discard_snapshot()  # the old snapshot still holds these embeddings


MAX_PAGE_SIZE = 1000  # identities per listing page: bounds one response


class Catalog:
    def __init__(
        self,
        db: Database,
        index_dir: Path,
        index_kind: str = AUTO,
        params: IndexParams | None = None,
        snapshot_interval: float | None = 60.0,
        backend: IndexBackend | None = None,
    ) -> None:
        if index_kind not in INDEX_KINDS:
            raise InvalidArgumentError(f"index kind must be one of {INDEX_KINDS}")
        self._db = db
        self._index_dir = Path(index_dir)
        self._params = params or IndexParams()
        self._live = LiveIndexes(db, self._index_dir, index_kind, self._params, backend)
        self._backend = self._live.backend
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        self._follower: ChangeFollower | None = None
        self._origin = uuid.uuid4().hex[:12]  # names this catalog's NOTIFYs
        if snapshot_interval:
            self._flusher = threading.Thread(
                target=self._flush_periodically, args=(snapshot_interval,), daemon=True
            )
            self._flusher.start()

    @classmethod
    def open(
        cls,
        database_url: str,
        index_dir: str | Path,
        index_kind: str = AUTO,
        *,
        migrate: bool | None = None,
        params: IndexParams | None = None,
        snapshot_interval: float | None = 60.0,
        backend: IndexBackend | None = None,
    ) -> Catalog:
        """Open the catalog. `migrate`: True upgrades the schema first, False refuses an
        outdated schema, None (default) upgrades only the embedded SQLite database."""
        if migrate or (migrate is None and is_sqlite(database_url)):
            _migrate(database_url)
        db = Database(database_url)
        try:
            check_schema(db.engine)
        except Exception:
            db.dispose()
            raise
        return cls(db, Path(index_dir), index_kind, params, snapshot_interval, backend)

    def close(self) -> None:
        """Stop background work and write every changed snapshot."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._follower is not None:
            self._follower.stop()
        if self._flusher is not None:
            self._flusher.join()
        self._live.close()
        self.flush()
        self._backend.close()
        self._db.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Write the snapshot of every gallery whose index changed."""
        for index in self._live.loaded():
            try:
                index.snapshot()
            except OSError:
                log.exception("gallery %r: snapshot failed", index.ref.name)

    # ---- galleries ------------------------------------------------------------------------

    def create_gallery(self, config: GalleryConfig) -> GalleryInfo:
        if config.dim <= 0:
            raise InvalidArgumentError(f"dimension must be positive, got {config.dim}")
        if config.index_kind not in (None, *INDEX_KINDS):
            raise InvalidArgumentError(f"index kind must be one of {INDEX_KINDS}")
        if not all(isinstance(name, str) and name for name in config.stored_attributes):
            raise InvalidArgumentError("stored attribute names must be non-empty strings")
        with self._db.write() as session:
            return repo.gallery_info(repo.create_gallery(session, config))

    def get_gallery(self, name: str) -> GalleryInfo:
        """The gallery with its counts: from memory when this process follows the change
        log (the gallery loaded on first use), else from SQL."""
        if self._follower is None:
            with self._db.read() as session:
                row = repo.get_gallery(session, name)
                return repo.gallery_info(row, *repo.gallery_counts(session, row.id))
        return self._live.labels(name).info()

    def list_galleries(self) -> list[GalleryInfo]:
        with self._db.read() as session:
            return [
                repo.gallery_info(row, *repo.gallery_counts(session, row.id))
                for row in repo.list_galleries(session)
            ]

    def delete_gallery(self, name: str) -> None:
        """Delete the gallery, its identities, faces, crops, index and snapshots."""
        with self._live.locked(name) as slot:
            with self._db.write() as session:
                row = repo.lock_gallery(session, name)
                ref = self._live.ref(row)
                repo.delete_gallery(session, row)
                self._announce(session, row.id)
            self._live.forget(slot)
            shutil.rmtree(self._index_dir / ref.uid, ignore_errors=True)
            self._backend.drop(ref, self._index_dir)  # also what this process never loaded
        self._db.checkpoint_after_erasure()

    # ---- identities -----------------------------------------------------------------------

    def get_identity(self, gallery: str, external_id: str) -> IdentityInfo:
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            return repo.identity_info(session, repo.get_identity(session, row.id, external_id))

    def identity_embeddings(self, gallery: str, external_id: str) -> np.ndarray:
        """(n, d) float32 embeddings of the identity's stored faces, in face id order (the
        order of `IdentityInfo.face_ids`); n is 0 for an identity with no face left."""
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            identity = repo.get_identity(session, row.id, external_id)
            return repo.identity_embeddings(session, identity.id, row.dim)

    def face_embeddings(
        self, gallery: str, face_ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, (n, d) float32 vectors) of the listed faces that exist, or of every face of
        the gallery when `face_ids` is None; in face id order (SearchFaces, ClusterFaces)."""
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            if face_ids is None:
                return repo.all_embeddings(session, row.id, row.dim)
            return repo.embeddings(session, row.id, sorted({int(i) for i in face_ids}), row.dim)

    def face_attributes(self, gallery: str, face_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """face id -> the attributes stored with it, for the listed faces that have some
        (one query per 5,000 ids; attribute filters of Identify and SearchFaces)."""
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            return repo.face_attributes(session, row.id, face_ids)

    def list_identities(
        self, gallery: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[IdentityInfo], str]:
        """A page of identities in creation order, and the token of the next page ("" at
        the end)."""
        if not 0 < page_size <= MAX_PAGE_SIZE:
            raise InvalidArgumentError(f"page size must be 1 to {MAX_PAGE_SIZE}, got {page_size}")
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            after = decode_page_token(page_token, row.id)
            page = repo.list_identities(session, row.id, page_size, after)
        next_token = encode_page_token(row.id, page[-1][0]) if len(page) == page_size else ""
        return [info for _, info in page], next_token

    def update_identity(
        self,
        gallery: str,
        external_id: str,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IdentityInfo:
        """Replace the display name and/or metadata (None leaves a field unchanged). The
        change enters the log under the gallery's write lock, so every process relabels
        the identity's hits in commit order."""
        with self._writing(gallery) as write:
            identity = repo.get_identity(write.session, write.row.id, external_id)
            repo.update_identity(identity, display_name, metadata)
            seq = repo.record_identity_change(write.session, write.row.id, identity.id)
            write.relabel(seq, LabelChanges(seq, identities={identity.id: label_of(identity)}))
            return repo.identity_info(write.session, identity)

    def delete_identity(self, gallery: str, external_id: str) -> int:
        """Delete an identity and all its faces; returns how many faces were removed."""
        return self.erase_identity(gallery, external_id).faces_removed

    def erase_identity(self, gallery: str, external_id: str) -> Erasure:
        """Delete an identity and all its faces; returns the count and the change sequence."""
        with self._writing(gallery) as write:
            identity = repo.get_identity(write.session, write.row.id, external_id)
            face_ids, seq = repo.delete_identity(write.session, identity)
            write.remove(seq, face_ids)
            gone = np.asarray(face_ids, dtype=np.int64)
            write.relabels = LabelChanges(seq or 0, removed=gone, identities={identity.id: None})
        self._db.checkpoint_after_erasure()
        return Erasure(len(face_ids), seq or 0)

    # ---- faces ----------------------------------------------------------------------------

    def enroll(self, gallery: str, request: EnrollRequest) -> EnrollOutcome:
        """Write the request's faces for its identity (created if new), in one SQL
        transaction under the gallery's write lock: identity lookup, model check, duplicate
        search (with `duplicate_threshold`: a face whose nearest face of another identity
        scores at least that is refused, not written), insert, then the index. The faces
        not refused are written all or nothing; nothing is written if all are refused."""
        if not request.external_id:
            raise InvalidArgumentError("an identity needs an external id")
        if request.duplicate_k <= 0:
            raise InvalidArgumentError("duplicate_k must be positive")
        if not request.faces:
            return EnrollOutcome(
                self._find_identity(gallery, request.external_id), False, [], [], None
            )
        try:
            return self._enroll(gallery, request)
        except SwitchingError:
            self._live.settle(gallery, SWITCH_WAIT_S)
            return self._enroll(gallery, request)

    def _enroll(self, gallery: str, request: EnrollRequest) -> EnrollOutcome:
        with self._writing(gallery) as write:
            replayed = self._replayed(write.session, write.row.id, request)
            if replayed is not None:
                return replayed
            outcome = self._write_faces(write, request)
            if request.request_id and request.receipt is not None:
                receipt = request.receipt(outcome)
                repo.add_receipt(
                    write.session, write.row.id, request.request_id, request.external_id, receipt
                )
        return outcome

    def enrollment_receipt(self, gallery: str, request: EnrollRequest) -> EnrollOutcome | None:
        """The outcome of an earlier Enroll with this request id (its receipt set), or None:
        lets a retry skip the image analysis. `enroll` checks again under the lock."""
        if not request.request_id:
            return None
        with self._db.read() as session:
            return self._replayed(session, repo.get_gallery(session, gallery).id, request)

    def _replayed(
        self, session: Session, gallery_id: int, request: EnrollRequest
    ) -> EnrollOutcome | None:
        if not request.request_id:
            return None
        found = repo.find_receipt(session, gallery_id, request.request_id)
        if found is None:
            return None
        if found.external_id != request.external_id:
            raise ConflictError(
                f"request_id {request.request_id!r} was used for identity "
                f"{found.external_id!r}: a request id names one request"
            )
        identity = repo.find_identity(session, gallery_id, request.external_id)
        info = None if identity is None else repo.identity_info(session, identity)
        # The first call's own sequence is not kept; the gallery's latest is at or after it
        # (the receipt committed with the write), so a reader waiting for it sees the write.
        latest = repo.latest_seq(session, gallery_id) or None
        return EnrollOutcome(info, False, [], [], latest, receipt=dict(found.receipt))

    def _write_faces(self, write: _Write, request: EnrollRequest) -> EnrollOutcome:
        row = write.row
        vectors = _unit_rows([face.embedding for face in request.faces], row.dim, "embedding")
        _check_models(request.faces, row)
        duplicates = self._duplicates(write, vectors, request)
        keep = [number for number, found in enumerate(duplicates) if found is None]
        if not keep:
            existing = repo.find_identity(write.session, row.id, request.external_id)
            info = None if existing is None else repo.identity_info(write.session, existing)
            return EnrollOutcome(info, False, [None] * len(duplicates), duplicates, None)
        identity, created = repo.enroll_identity(
            write.session, row.id, request.external_id, request.display_name, request.metadata
        )
        faces = [request.faces[number] for number in keep]
        ids, seq = repo.insert_faces(write.session, row, identity, faces, vectors[keep])
        write.add(seq, ids, vectors[keep])
        added, owners = np.asarray(ids, np.int64), np.full(len(ids), identity.id, np.int64)
        labels: dict[int, IdentityLabel | None] = {identity.id: label_of(identity)}
        write.relabels = LabelChanges(seq or 0, added, owners, identities=labels)
        info = repo.identity_info(write.session, identity)
        face_ids: list[int | None] = [None] * len(duplicates)
        for number, face_id in zip(keep, ids, strict=True):
            face_ids[number] = face_id
        return EnrollOutcome(info, created, face_ids, duplicates, seq)

    def add_faces(
        self,
        gallery: str,
        external_id: str,
        faces: Sequence[NewFace],
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[int]:
        """Enroll faces for an identity (created if new) with no duplicate check; all or
        nothing. Returns face ids."""
        if not faces:
            raise InvalidArgumentError("no faces to add")
        request = EnrollRequest(external_id, faces, display_name, metadata)
        return [face_id for face_id in self.enroll(gallery, request).face_ids if face_id]

    def delete_face(self, gallery: str, face_id: int) -> int:
        """Delete one face; returns the change-log sequence of the delete."""
        with self._writing(gallery) as write:
            seq = repo.delete_face(write.session, write.row.id, int(face_id))
            write.remove(seq, [int(face_id)])
            write.relabels = LabelChanges(seq or 0, removed=np.asarray([int(face_id)], np.int64))
        self._db.checkpoint_after_erasure()
        return seq or 0

    def get_face(self, gallery: str, face_id: int) -> FaceInfo:
        with self._db.read() as session:
            return repo.face_info(session, repo.get_gallery(session, gallery).id, face_id)

    def get_crop(self, gallery: str, face_id: int) -> bytes | None:
        with self._db.read() as session:
            return repo.face_crop(session, repo.get_gallery(session, gallery).id, face_id)

    def face_ids(self, gallery: str) -> list[int]:
        """Every face id SQL holds for the gallery (the source of truth)."""
        with self._db.read() as session:
            return repo.face_ids(session, repo.get_gallery(session, gallery).id)

    def index_ids(self, gallery: str) -> np.ndarray:
        """Every face id the live index holds for the gallery."""
        return self._live.get(gallery).ids()

    def search(
        self,
        gallery: str,
        embeddings: np.ndarray,
        k: int = 10,
        threshold: float | None = None,
        model_sha256: str | None = None,
    ) -> list[list[Hit]]:
        """Top-k faces per query row, best first, scores >= threshold (cosine)."""
        return self.nearest(gallery, embeddings, k, threshold, model_sha256).hits()

    def nearest(
        self,
        gallery: str,
        embeddings: np.ndarray,
        k: int = 10,
        threshold: float | None = None,
        model_sha256: str | None = None,
    ) -> Nearest:
        """The index's answer, labelled by `.hits()` (two steps, so that callers can time
        them apart). A process that follows the change log (`follow`) runs no SQL here; one
        that does not checks SQL for other processes' changes first (one query).
        `model_sha256`: the model the queries come from; ModelSwitchedError when the live
        index holds another model's vectors (it switched since `serving_model`)."""
        if k <= 0:
            raise InvalidArgumentError("k must be positive")
        index = self._live.get(gallery)
        if self._follower is None:
            with self._db.read() as session:
                index = self._live.current(session, gallery, index)
        ref = index.ref
        if model_sha256 is not None and model_sha256 != ref.model_sha256:
            raise ModelSwitchedError(
                f"gallery {gallery!r} now serves model {ref.model_sha256[:12]}…",
                ref.model_sha256,
            )
        labels = self._live.labels(gallery)
        queries = _unit_rows(embeddings, ref.dim, "query")
        scores, ids = index.search(queries, k, threshold)
        return Nearest(labels, scores, ids)

    def serving_model(self, gallery: str) -> str:
        """The SHA-256 of the model whose vectors this process's live index of the gallery
        holds: probes must be embedded with it (during a switch it is the old model)."""
        return self._live.get(gallery).ref.model_sha256

    def live(self, gallery: str) -> tuple[str, str, int]:
        """(model SHA-256, kind, faces) of this process's live index of the gallery;
        ("", "", 0) when it is not loaded here."""
        index = self._live.peek(gallery)
        if index is None:
            return "", "", 0
        return index.ref.model_sha256, index.kind.value, index.count

    def before_switch(self, prepare: Callable[[str], None]) -> None:
        """Call `prepare(model_sha256)` before this process switches a gallery to another
        model (in the background switch's thread): the engine loads the recognizer."""
        self._live.before_switch = prepare

    def stats(self) -> dict[str, Any]:
        galleries = []
        for info in self.list_galleries():
            index = self._live.peek(info.name)
            entry: dict[str, Any] = {
                "name": info.name,
                "model": info.model_name,
                "dim": info.dim,
                "identities": info.identity_count,
                "faces": info.face_count,
            }
            if index is not None:
                entry.update(
                    index_model_sha256=index.ref.model_sha256,
                    index_kind=index.kind.value,
                    index_size=index.count,
                    watermark=index.watermark,
                    snapshot_stale=index.dirty,
                )
            galleries.append(entry)
        return {
            "galleries": galleries,
            "faces": sum(entry["faces"] for entry in galleries),
            "identities": sum(entry["identities"] for entry in galleries),
        }

    # ---- reindex --------------------------------------------------------------------------

    def reindex(
        self,
        gallery: str,
        kind: str | None = None,
        model: ModelInfo | None = None,
        embed_crops: EmbedCrops | None = None,
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> GalleryInfo:
        """Rebuild the index from SQL (optionally as another kind, remembered for the
        gallery), or with `model` + `embed_crops`: re-embed every stored crop and switch the
        gallery to that model atomically. The old index serves searches until the switch."""
        if kind is not None and kind not in INDEX_KINDS:
            raise InvalidArgumentError(f"index kind must be one of {INDEX_KINDS}")
        if kind is not None:
            self._remember_kind(gallery, kind)
        if model is None:
            self._live.rebuild(gallery)
        else:
            if embed_crops is None:
                raise InvalidArgumentError("re-embedding needs an embed_crops function")
            job = _Reembedding(self, model, embed_crops, batch_size)
            job.run(gallery, progress)
        return self.get_gallery(gallery)

    def _remember_kind(self, gallery: str, kind: str) -> None:
        with self._writing(gallery) as write:
            repo.set_index_kind(write.row, None if kind == AUTO else kind)
            write.new_ref = self._live.ref(write.row)

    # ---- the write path -------------------------------------------------------------------

    @contextmanager
    def _writing(self, gallery: str) -> Iterator[_Write]:
        """A write on the gallery (see the module docstring): the body runs inside the SQL
        transaction; what it records on the `_Write` reaches the index after the commit."""
        with self._live.locked(gallery) as slot:
            self._live.load(slot, gallery)
            with self._db.write() as session:
                try:
                    row = repo.lock_gallery(session, gallery)
                except NotFoundError:
                    self._live.forget(slot)  # deleted by another process: drop what we hold of it
                    raise
                index = self._live.caught_up(session, slot, row)
                assert slot.labels is not None  # caught up with the index
                write = _Write(session, row, index, slot.labels)
                yield write
                session.flush()
                write.gallery = repo.gallery_info(row)  # settings, model, kind as committed
                self._announce(session, row.id)  # other servers' followers wake at COMMIT
            write.apply()
        self._live.maintain(gallery, write.index)

    def _duplicates(
        self, write: _Write, vectors: np.ndarray, request: EnrollRequest
    ) -> list[DuplicateOf | None]:
        """Per face: the most similar face of another identity at or above the duplicate
        threshold, or None."""
        threshold = request.duplicate_threshold
        if threshold is None or not write.index.count:
            return [None] * len(vectors)
        scores, ids = write.index.search(vectors, request.duplicate_k, threshold)
        found = []
        for hits in write.labels.hits(scores, ids):  # caught up under the write lock
            other = next((hit for hit in hits if hit.external_id != request.external_id), None)
            found.append(None if other is None else DuplicateOf(other.external_id, other.score))
        return found

    def _find_identity(self, gallery: str, external_id: str) -> IdentityInfo | None:
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            identity = repo.find_identity(session, row.id, external_id)
            return None if identity is None else repo.identity_info(session, identity)

    # ---- following other servers' writes --------------------------------------------------

    def follow(self, poll_interval: float = 1.0) -> None:
        """Keep the loaded indexes current with other processes' writes: a thread catches
        up from the change log when PostgreSQL notifies a commit (polling where it cannot),
        so searches rarely find their index behind (facedb.storage.follower)."""
        if self._follower is None:
            self._follower = ChangeFollower(
                self, self._db.url, poll_interval, origin=self._origin
            ).start()

    def catch_up_all(self) -> int:
        """Apply the change log after each loaded gallery's watermark; returns how far the
        watermarks moved. A gallery deleted or re-created elsewhere is dropped or reloaded."""
        return sum(self.catch_up(index.ref.name) for index in self._live.loaded())

    def catch_up_ids(self, gallery_ids: set[int]) -> int:
        loaded = self._live.loaded()
        return sum(self.catch_up(i.ref.name) for i in loaded if i.ref.id in gallery_ids)

    def catch_up(self, gallery: str) -> int:
        index = self._live.peek(gallery)
        if index is None:
            return 0
        before = index.watermark
        try:
            with self._db.read() as session:
                index = self._live.current(session, gallery, index)
        except NotFoundError:
            with self._live.locked(gallery) as slot:
                self._live.forget(slot)  # deleted by another server
            return 0
        self._live.maintain(gallery, index)
        return max(0, index.watermark - before)

    def wait_for(self, gallery: str, sequence: int, timeout: float) -> bool:
        """Read-your-writes across servers: True once this process's index of `gallery`
        reflects change `sequence` (the `sequence` an enroll returned, perhaps on another
        server), catching up from SQL meanwhile; False when `timeout` passes first (e.g.
        this server reads from a standby that has not replayed that far yet)."""
        deadline = time.monotonic() + timeout
        index = self._live.get(gallery)
        while index.watermark < sequence:
            self.catch_up(gallery)
            index = self._live.get(gallery)
            if index.watermark >= sequence:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_POLL_S)
        return True

    def _announce(self, session: Session, gallery_id: int) -> None:
        """Wake the followers of other servers when this transaction commits (PostgreSQL
        delivers a NOTIFY at COMMIT, and drops it on ROLLBACK)."""
        if not self._db.sqlite:
            notice = payload(gallery_id, self._origin)
            session.execute(select(func.pg_notify(CHANNEL, notice)))

    def wait_for_maintenance(self) -> None:
        """Wait for background rebuilds to finish (for tools and tests)."""
        self._live.wait()

    def _flush_periodically(self, interval: float) -> None:
        while not self._closed.wait(interval):
            self.flush()


@dataclass(frozen=True)
class Nearest:
    """A search's index answer (face ids and scores per query row) with the labels of the
    moment it ran; `hits()` labels it: a face with no label (removed) is dropped."""

    labels: GalleryLabels
    scores: np.ndarray
    ids: np.ndarray

    def hits(self) -> list[list[Hit]]:
        return self.labels.hits(self.scores, self.ids)


class _Reembedding:
    """The re-embedding use case of `Catalog.reindex`: every stored crop through another
    model, outside any lock, then the switch (faces enrolled meanwhile included) in one
    write transaction; the old index serves searches until then."""

    def __init__(
        self, catalog: Catalog, model: ModelInfo, embed_crops: EmbedCrops, batch_size: int
    ) -> None:
        self.catalog, self.model = catalog, model
        self.embed_crops, self.batch_size = embed_crops, batch_size

    def run(self, gallery: str, progress: Progress | None) -> None:
        catalog, model = self.catalog, self.model
        ref = catalog._live.get(gallery).ref
        with catalog._db.read() as session:
            _require_crops(session, ref.id)
            ids = repo.face_ids(session, ref.id)
        # The slow part, with no lock held: enrollment and search carry on meanwhile.
        vectors = self._embed(ref.id, ids, progress, None)
        with catalog._writing(gallery) as write:
            row = write.row
            if row.uid != ref.uid:
                raise ConflictError(f"gallery {gallery!r} was deleted while being re-embedded")
            current = repo.face_ids(write.session, row.id)
            late = [face_id for face_id in current if face_id not in vectors]
            if late:  # enrolled while we were embedding (with the old model)
                _require_crops(write.session, row.id)
                vectors |= self._embed(row.id, late, None, write.session)
            vectors = {face_id: vectors[face_id] for face_id in current}
            repo.set_embeddings(write.session, row.id, vectors, model.name, model.sha256)
            repo.set_model(row, model.name, model.sha256, model.dim)
            watermark = repo.latest_seq(write.session, row.id)
            new_ref = replace(write.index.ref, model_sha256=model.sha256, dim=model.dim)
            backend = catalog._backend
            prepared = backend.prepare_from(new_ref, vectors, watermark, catalog._params)
            target = write.index
            write.replacement = lambda: backend.install(target, prepared, None)
        catalog._live.get(gallery).snapshot()
        log.info("gallery %r: re-embedded %d faces with %s", gallery, len(vectors), model.name)

    def _embed(
        self, gallery_id: int, ids: list[int], progress: Progress | None, session: Session | None
    ) -> dict[int, np.ndarray]:
        """The crops of `ids` embedded with the new model, read in a fresh transaction or in
        `session` (the write transaction, for faces enrolled during the slow part)."""
        vectors: dict[int, np.ndarray] = {}
        batch_size, dim = self.batch_size, self.model.dim
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            if session is None:
                with self.catalog._db.read() as reader:
                    stored = repo.crops(reader, gallery_id, chunk)
            else:
                stored = repo.crops(session, gallery_id, chunk)
            rows = [(face_id, crop) for face_id, crop in stored if crop is not None]
            embedded = _unit_rows(
                self.embed_crops([crop for _, crop in rows]), dim, "re-embedded vector"
            )
            if len(embedded) != len(rows):
                raise ValueError(f"embed_crops returned {len(embedded)} rows for {len(rows)}")
            vectors.update(zip((face_id for face_id, _ in rows), embedded, strict=True))
            if progress is not None:
                progress(min(start + batch_size, len(ids)), len(ids))
        return vectors


def _migrate(url: str) -> None:
    migrate(url, "head")


def _unit_rows(vectors: Any, dim: int, what: str) -> np.ndarray:
    """Validate (Q, dim) finite non-zero rows and scale them to unit length."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"{what} is not a numeric array: {error}") from error
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise InvalidArgumentError(
            f"{what} has dimension {matrix.shape[-1] if matrix.ndim else 0}, "
            f"the gallery's model produces {dim}"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidArgumentError(f"{what} has a zero or non-finite row")
    # Rows already of unit length are kept bit for bit (what the embedder produced).
    scale = np.where(np.abs(norms - 1.0) > 1e-5, norms, 1.0).astype(np.float32)
    return np.ascontiguousarray(matrix / scale, dtype=np.float32)


def _check_models(faces: Sequence[NewFace], gallery: Gallery) -> None:
    """Refuse faces embedded by another model than the locked gallery row's (a reindex in
    another process may have switched it since this process last looked)."""
    for face in faces:
        if face.model_sha256 is not None and face.model_sha256 != gallery.model_sha256:
            raise ConflictError(
                f"face embedded by model {face.model_sha256[:12]}, but gallery "
                f"{gallery.name!r} now holds embeddings of {gallery.model_name} "
                f"({gallery.model_sha256[:12]})"
            )


def _require_crops(session: Session, gallery_id: int) -> None:
    missing = repo.faces_without_crop(session, gallery_id)
    if missing:
        raise ConflictError(f"{missing} faces have no stored crop: cannot re-embed them")
