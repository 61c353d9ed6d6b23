"""The durable face catalog: SQL store + one FAISS index per gallery.

This is the only place that writes both. Every write commits SQL first and then applies the
same change to the index under the gallery's write lock; a crash in between is repaired on
the next open, which replays the SQL change log after the snapshot's watermark. Searches
run concurrently with each other and see an index state either before or after a write.

A removal also deletes the gallery's snapshot file at once (it still holds the removed
embedding); the next flush (periodic, or on close) writes a fresh one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from facedb.index.backend import FaissBackend, IndexBackend, LiveIndex
from facedb.index.manager import GalleryRef, Replay
from facedb.index.vector_index import AUTO, IndexKind, IndexParams
from facedb.storage import repository as repo
from facedb.storage.db import Database, check_schema, is_sqlite, migrate
from facedb.storage.errors import ConflictError, InvalidArgumentError, NotFoundError
from facedb.storage.follower import CHANNEL, ChangeFollower
from facedb.storage.records import (
    FaceInfo,
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    Hit,
    IdentityInfo,
    ModelInfo,
    NewFace,
)
from facedb.storage.tables import OP_REMOVED, Gallery

__all__ = [
    "Catalog",
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

EmbedCrops = Callable[[list[bytes]], np.ndarray]
Progress = Callable[[int, int], None]  # (done, total)
INDEX_KINDS = (AUTO, *(kind.value for kind in IndexKind))


@dataclass
class _Gallery:
    """A loaded gallery: its index and the lock that orders its writers."""

    index: LiveIndex
    write_lock: threading.Lock
    rebuild_thread: threading.Thread | None = None


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
        self._index_kind = index_kind
        self._params = params or IndexParams()
        self._backend: IndexBackend = backend or FaissBackend()
        self._source = _SqlIndexSource(db)
        self._galleries: dict[str, _Gallery] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._follower: ChangeFollower | None = None
        self._flusher: threading.Thread | None = None
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
        for gallery in self._loaded():
            if gallery.rebuild_thread is not None:
                gallery.rebuild_thread.join()
        self.flush()
        self._backend.close()
        self._db.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Write the snapshot of every gallery whose index changed."""
        for gallery in self._loaded():
            try:
                gallery.index.snapshot()
            except OSError:
                log.exception("gallery %r: snapshot failed", gallery.index.ref.name)

    # ---- galleries ------------------------------------------------------------------------

    def create_gallery(self, config: GalleryConfig) -> GalleryInfo:
        if config.dim <= 0:
            raise InvalidArgumentError(f"dimension must be positive, got {config.dim}")
        if config.index_kind not in (None, *INDEX_KINDS):
            raise InvalidArgumentError(f"index kind must be one of {INDEX_KINDS}")
        with self._db.write() as session:
            return repo.gallery_info(repo.create_gallery(session, config))

    def get_gallery(self, name: str) -> GalleryInfo:
        with self._db.read() as session:
            row = repo.get_gallery(session, name)
            return repo.gallery_info(row, *repo.gallery_counts(session, row.id))

    def list_galleries(self) -> list[GalleryInfo]:
        with self._db.read() as session:
            return [
                repo.gallery_info(row, *repo.gallery_counts(session, row.id))
                for row in repo.list_galleries(session)
            ]

    def update_gallery(
        self, name: str, settings: GallerySettings | None = None, store_crops: bool | None = None
    ) -> GalleryInfo:
        with self._db.write() as session:
            row = repo.get_gallery(session, name, lock=True)
            if settings is not None:
                row.match_threshold = settings.match_threshold
                row.duplicate_threshold = settings.duplicate_threshold
                row.gate_policy = settings.gate_policy
            if store_crops is not None:
                row.store_crops = store_crops
            session.flush()
            return repo.gallery_info(row, *repo.gallery_counts(session, row.id))

    def delete_gallery(self, name: str) -> None:
        """Delete the gallery, its identities, faces, crops, index and snapshots."""
        loaded = self._galleries.get(name)
        lock = loaded.write_lock if loaded else threading.Lock()
        with lock:
            with self._db.write() as session:
                row = repo.delete_gallery(session, name)
                self._announce(session, row.id)
                ref = GalleryRef(row.id, row.uid, row.name, row.model_sha256, row.dim, AUTO)
            with self._lock:
                self._galleries.pop(name, None)
            self._backend.drop(ref, self._index_dir)

    # ---- identities -----------------------------------------------------------------------

    def get_identity(self, gallery: str, external_id: str) -> IdentityInfo:
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            return repo.identity_info(session, repo.get_identity(session, row.id, external_id))

    def list_identities(
        self, gallery: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[IdentityInfo], str]:
        """A page of identities in creation order, and the token of the next page ("" at
        the end)."""
        if page_size <= 0:
            raise InvalidArgumentError("page size must be positive")
        after = _decode_token(page_token)
        with self._db.read() as session:
            row = repo.get_gallery(session, gallery)
            page = repo.list_identities(session, row.id, page_size, after)
        next_token = str(page[-1][0]) if len(page) == page_size else ""
        return [info for _, info in page], next_token

    def update_identity(
        self,
        gallery: str,
        external_id: str,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IdentityInfo:
        """Replace the display name and/or metadata (None leaves a field unchanged)."""
        with self._db.write() as session:
            row = repo.get_gallery(session, gallery)
            identity = repo.get_identity(session, row.id, external_id)
            repo.update_identity(identity, display_name, metadata)
            session.flush()
            return repo.identity_info(session, identity)

    def delete_identity(self, gallery: str, external_id: str) -> int:
        """Delete an identity and all its faces; returns how many faces were removed."""
        state = self._gallery(gallery)
        with state.write_lock:
            with self._db.write() as session:
                row = self._locked_row(session, state)
                identity = repo.get_identity(session, row.id, external_id)
                face_ids, seq = repo.delete_identity(session, identity)
                self._announce(session, row.id)
            self._remove_from_index(state, face_ids, seq)
        return len(face_ids)

    # ---- faces ----------------------------------------------------------------------------

    def add_faces(
        self,
        gallery: str,
        external_id: str,
        faces: Sequence[NewFace],
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[int]:
        """Enroll faces for an identity (created if new); all or nothing. Returns face ids."""
        if not faces:
            raise InvalidArgumentError("no faces to add")
        if not external_id:
            raise InvalidArgumentError("an identity needs an external id")
        state = self._gallery(gallery)
        with state.write_lock:
            ref = state.index.ref
            vectors = _unit_rows([face.embedding for face in faces], ref.dim, "embedding")
            _check_models(faces, ref.model_sha256)
            with self._db.write() as session:
                row = self._locked_row(session, state)
                identity = repo.upsert_identity(
                    session, row.id, external_id, display_name, metadata
                )
                ids, seq = repo.insert_faces(session, row, identity, faces, vectors)
                self._announce(session, row.id)
            state.index.apply(seq, np.asarray(ids, dtype=np.int64), vectors)
        self._maintain(state)
        return ids

    def delete_face(self, gallery: str, face_id: int) -> None:
        state = self._gallery(gallery)
        with state.write_lock:
            with self._db.write() as session:
                row = self._locked_row(session, state)
                seq = repo.delete_face(session, row.id, int(face_id))
                self._announce(session, row.id)
            self._remove_from_index(state, [int(face_id)], seq)

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
        return self._gallery(gallery).index.ids()

    def search(
        self, gallery: str, embeddings: np.ndarray, k: int = 10, threshold: float | None = None
    ) -> list[list[Hit]]:
        """Top-k faces per query row, best first, scores >= threshold (cosine)."""
        if k <= 0:
            raise InvalidArgumentError("k must be positive")
        state = self._gallery(gallery)
        ref = state.index.ref
        queries = _unit_rows(embeddings, ref.dim, "query")
        scores, ids = state.index.search(queries, k, threshold)
        found = [int(face_id) for face_id in ids.ravel() if face_id >= 0]
        with self._db.read() as session:
            # A face removed after the index answered is gone from SQL: it is dropped here.
            labels = repo.face_labels(session, ref.id, found)
        return [
            _hits(row_scores, row_ids, labels)
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def stats(self) -> dict[str, Any]:
        galleries = []
        for info in self.list_galleries():
            loaded = self._galleries.get(info.name)
            entry: dict[str, Any] = {
                "name": info.name,
                "model": info.model_name,
                "dim": info.dim,
                "identities": info.identity_count,
                "faces": info.face_count,
            }
            if loaded is not None:
                entry.update(
                    index_kind=str(loaded.index.kind),
                    index_size=loaded.index.count,
                    watermark=loaded.index.watermark,
                    snapshot_stale=loaded.index.dirty,
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
        state = self._gallery(gallery)
        if kind is not None:
            self._remember_kind(state, kind)
        if model is None:
            self._rebuild(state)
        else:
            if embed_crops is None:
                raise InvalidArgumentError("re-embedding needs an embed_crops function")
            self._reembed(state, model, embed_crops, batch_size, progress)
        return self.get_gallery(gallery)

    def _remember_kind(self, state: _Gallery, kind: str) -> None:
        with state.write_lock:
            with self._db.write() as session:
                self._locked_row(session, state).index_kind = None if kind == AUTO else kind
            ref = replace(state.index.ref, kind=kind)
            state.index.ref = ref

    def _rebuild(self, state: _Gallery) -> None:
        """Build a new index from SQL while the old one serves, then swap it in."""
        prepared = self._backend.prepare(self._source, state.index.ref, self._params)
        with state.write_lock:  # no write can slip between the replay and the swap
            self._backend.install(state.index, prepared, self._source)
        state.index.snapshot()

    def _reembed(
        self,
        state: _Gallery,
        model: ModelInfo,
        embed_crops: EmbedCrops,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        ref = state.index.ref
        with self._db.read() as session:
            _require_crops(session, ref.id)
            ids = repo.face_ids(session, ref.id)
        # The slow part, with no lock held: enrollment and search carry on meanwhile.
        vectors = self._embed(ref.id, ids, model, embed_crops, batch_size, progress, None)
        with state.write_lock:
            with self._db.write() as session:
                row = self._locked_row(session, state)
                current = repo.face_ids(session, row.id)
                late = [face_id for face_id in current if face_id not in vectors]
                if late:  # enrolled while we were embedding (with the old model)
                    _require_crops(session, ref.id)
                    vectors |= self._embed(
                        ref.id, late, model, embed_crops, batch_size, None, session
                    )
                vectors = {face_id: vectors[face_id] for face_id in current}
                repo.set_embeddings(session, row.id, vectors, model.name, model.sha256)
                row.model_name, row.model_sha256, row.dim = model.name, model.sha256, model.dim
                watermark = repo.latest_seq(session, row.id)
                self._announce(session, row.id)
                new_ref = replace(ref, model_sha256=model.sha256, dim=model.dim)
                prepared = self._backend.prepare_from(new_ref, vectors, watermark, self._params)
            # Committed: switch (the old index serves until then).
            self._backend.install(state.index, prepared, None)
        state.index.snapshot()
        log.info("gallery %r: re-embedded %d faces with %s", ref.name, len(vectors), model.name)

    def _embed(
        self,
        gallery_id: int,
        ids: list[int],
        model: ModelInfo,
        embed_crops: EmbedCrops,
        batch_size: int,
        progress: Progress | None,
        session: Any,
    ) -> dict[int, np.ndarray]:
        vectors: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            if session is None:
                with self._db.read() as reader:
                    rows = repo.crops(reader, gallery_id, chunk)
            else:
                rows = repo.crops(session, gallery_id, chunk)
            rows = [(face_id, crop) for face_id, crop in rows if crop is not None]
            embedded = _unit_rows(
                embed_crops([crop for _, crop in rows]), model.dim, "re-embedded vector"
            )
            if len(embedded) != len(rows):
                raise ValueError(f"embed_crops returned {len(embedded)} rows for {len(rows)}")
            vectors.update(zip((face_id for face_id, _ in rows), embedded, strict=True))
            if progress is not None:
                progress(min(start + batch_size, len(ids)), len(ids))
        return vectors

    # ---- following other servers' writes --------------------------------------------------

    def follow(self, poll_interval: float = 1.0) -> None:
        """Keep the loaded indexes current with other processes' writes: a thread catches
        up from the change log when PostgreSQL notifies a commit, and every `poll_interval`
        seconds in any case (facedb.storage.follower)."""
        if self._follower is None:
            self._follower = ChangeFollower(self, self._db.url, poll_interval).start()

    def catch_up_all(self) -> int:
        """Apply the change log after each loaded gallery's watermark; returns how many
        changes were applied. A gallery deleted or re-created elsewhere is dropped or
        reloaded."""
        return sum(self.catch_up(name) for name in list(self._galleries))

    def catch_up_ids(self, gallery_ids: set[int]) -> int:
        with self._lock:
            names = [n for n, g in self._galleries.items() if g.index.ref.id in gallery_ids]
        return sum(self.catch_up(name) for name in names)

    def catch_up(self, gallery: str) -> int:
        state = self._galleries.get(gallery)
        if state is None:
            return 0
        with state.write_lock:
            ref = state.index.ref
            try:
                with self._db.read() as session:
                    row = repo.get_gallery(session, gallery)
                    current = (row.uid, row.model_sha256, row.dim)
            except NotFoundError:
                with self._lock:
                    self._galleries.pop(gallery, None)
                return 0
            if current != (ref.uid, ref.model_sha256, ref.dim):
                log.info("gallery %r changed in another process: reloading its index", gallery)
                state.index = self._open_index(gallery)
                return 1
            before = state.index.watermark
            changes = self._source.replay(ref, before)
            if changes.watermark <= before:
                return 0
            state.index.apply(
                changes.watermark, changes.added_ids, changes.added_vectors, changes.removed
            )
            if len(changes.removed):
                state.index.discard_snapshot()
        self._maintain(state)
        return len(changes.added_ids) + len(changes.removed)

    def _announce(self, session: Any, gallery_id: int) -> None:
        """Wake the followers of other servers when this transaction commits (PostgreSQL
        delivers a NOTIFY at COMMIT, and drops it on ROLLBACK)."""
        if not self._db.sqlite:
            session.execute(sa.select(sa.func.pg_notify(CHANNEL, str(gallery_id))))

    # ---- internals ------------------------------------------------------------------------

    def _loaded(self) -> list[_Gallery]:
        with self._lock:
            return list(self._galleries.values())

    def _gallery(self, name: str) -> _Gallery:
        """The loaded gallery, loading its index on first use (one loader per gallery)."""
        with self._lock:
            if name in self._galleries:
                return self._galleries[name]
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:
            with self._lock:
                if name in self._galleries:
                    return self._galleries[name]
            gallery = _Gallery(self._open_index(name), threading.Lock())
            with self._lock:
                self._galleries[name] = gallery
            return gallery

    def _open_index(self, name: str) -> LiveIndex:
        with self._db.read() as session:
            row = repo.get_gallery(session, name)
            ref = GalleryRef(
                row.id,
                row.uid,
                row.name,
                row.model_sha256,
                row.dim,
                row.index_kind or self._index_kind,
            )
        return self._backend.open(self._source, ref, self._index_dir, self._params)

    def _locked_row(self, session: Any, state: _Gallery) -> Gallery:
        """Lock the gallery's row (orders writers across processes) and check it is still
        the gallery this index was built for."""
        ref = state.index.ref
        row = repo.get_gallery(session, ref.name, lock=True)
        if row.uid != ref.uid:
            raise ConflictError(f"gallery {ref.name!r} was deleted and created again")
        return row

    def _remove_from_index(self, state: _Gallery, face_ids: list[int], seq: int | None) -> None:
        state.index.apply(seq, removed=np.asarray(face_ids, dtype=np.int64))
        if face_ids:
            state.index.discard_snapshot()  # the old snapshot still holds these embeddings
        self._maintain(state)

    def _maintain(self, state: _Gallery) -> None:
        """Start a background rebuild when the index no longer suits the gallery."""
        reason = state.index.needs_rebuild()
        if reason is None or self._closed.is_set():
            return
        with self._lock:
            if state.rebuild_thread is not None and state.rebuild_thread.is_alive():
                return
            log.info(
                "gallery %r: rebuilding the index in the background: %s",
                state.index.ref.name,
                reason,
            )
            state.rebuild_thread = threading.Thread(
                target=self._rebuild_logged, args=(state,), daemon=True
            )
            state.rebuild_thread.start()

    def _rebuild_logged(self, state: _Gallery) -> None:
        try:
            self._rebuild(state)
        except Exception:
            log.exception("gallery %r: background rebuild failed", state.index.ref.name)

    def wait_for_maintenance(self) -> None:
        """Wait for background rebuilds to finish (for tools and tests)."""
        for gallery in self._loaded():
            thread = gallery.rebuild_thread
            if thread is not None:
                thread.join()

    def _flush_periodically(self, interval: float) -> None:
        while not self._closed.wait(interval):
            self.flush()


class _SqlIndexSource:
    """The index's view of SQL: change log, embeddings, counts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def replay(self, gallery: GalleryRef, since: int) -> Replay:
        with self._db.snapshot_read() as session:
            changes = repo.changes_after(session, gallery.id, since)
            final = {face_id: op for _, face_id, op in changes}
            added = [face_id for face_id, op in final.items() if op != OP_REMOVED]
            ids, vectors = repo.embeddings(session, gallery.id, sorted(added), gallery.dim)
        removed = [face_id for face_id, op in final.items() if op == OP_REMOVED]
        watermark = changes[-1][0] if changes else since
        return Replay(watermark, np.asarray(removed, dtype=np.int64), ids, vectors)

    def everything(self, gallery: GalleryRef) -> tuple[int, np.ndarray, np.ndarray]:
        with self._db.snapshot_read() as session:
            watermark = repo.latest_seq(session, gallery.id)
            ids, vectors = repo.all_embeddings(session, gallery.id, gallery.dim)
        return watermark, ids, vectors

    def count(self, gallery: GalleryRef) -> int:
        with self._db.read() as session:
            return repo.count_faces(session, gallery.id)


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


def _check_models(faces: Sequence[NewFace], model_sha256: str) -> None:
    for face in faces:
        if face.model_sha256 is not None and face.model_sha256 != model_sha256:
            raise ConflictError(
                f"face embedded by model {face.model_sha256[:12]}, the gallery uses "
                f"{model_sha256[:12]}"
            )


def _require_crops(session: Any, gallery_id: int) -> None:
    missing = repo.faces_without_crop(session, gallery_id)
    if missing:
        raise ConflictError(f"{missing} faces have no stored crop: cannot re-embed them")


def _hits(
    scores: np.ndarray, ids: np.ndarray, labels: dict[int, tuple[str, str | None, dict]]
) -> list[Hit]:
    hits = []
    for score, face_id in zip(scores, ids, strict=True):
        label = labels.get(int(face_id))
        if face_id >= 0 and label is not None:
            hits.append(Hit(int(face_id), label[0], float(score), label[1], label[2]))
    return hits


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        return int(token)
    except ValueError as error:
        raise InvalidArgumentError(f"invalid page token {token!r}") from error
