"""SQL reads and writes, one short function per operation, all inside a caller's session.
The only place that writes ORM rows.

Every write that changes which faces a gallery holds also appends to the change log in the
same transaction, and takes the gallery's write lock first (`lock_gallery`): one gallery's
writers, in any process, then commit in change-sequence order, so a watermark never skips a
change, and a check made under the lock (model, duplicates) still holds at commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

import numpy as np
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.storage.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from facedb.storage.records import (
    MAX_METADATA_BYTES,
    FaceInfo,
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    IdentityInfo,
    NewFace,
)
from facedb.storage.tables import (
    OP_ADDED,
    OP_IDENTITY,
    OP_REMOVED,
    Base,
    Change,
    EnrollReceipt,
    Face,
    Gallery,
    Identity,
    utcnow,
)

EMBEDDING_DTYPE = np.dtype("<f4")
# First key of the PostgreSQL advisory locks taken per gallery (the second is the gallery
# id), so that they cannot collide with advisory locks other software takes on the server.
GALLERY_LOCK_SPACE = 0x66616364  # "facd"


def encode_embedding(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def decode_embedding(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE)


# ---- galleries ----------------------------------------------------------------------------


def gallery_info(row: Gallery, identity_count: int = 0, face_count: int = 0) -> GalleryInfo:
    settings = GallerySettings(
        match_threshold=row.match_threshold,
        duplicate_threshold=row.duplicate_threshold,
        gate_policy=row.gate_policy,
        verify_threshold=row.verify_threshold,
    )
    return GalleryInfo(
        id=row.id,
        uid=row.uid,
        name=row.name,
        model_name=row.model_name,
        model_sha256=row.model_sha256,
        dim=row.dim,
        settings=settings,
        store_crops=row.store_crops,
        index_kind=row.index_kind,
        created_at=row.created_at,
        updated_at=row.updated_at,
        identity_count=identity_count,
        face_count=face_count,
        stored_attributes=tuple(row.stored_attributes or ()),
    )


def get_gallery(session: Session, name: str) -> Gallery:
    row = session.scalars(select(Gallery).where(Gallery.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"gallery {name!r} not found")
    return row


def lock_gallery(session: Session, name: str) -> Gallery:
    """The gallery's row, read after taking the gallery's write lock for this transaction.

    PostgreSQL: a transaction-scoped advisory lock keyed by the gallery (held to commit or
    rollback, across processes), then the row FOR UPDATE. SQLite: the write transaction
    began with BEGIN IMMEDIATE, so it is already the only writer of the whole database.
    """
    gallery_id = get_gallery(session, name).id
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(GALLERY_LOCK_SPACE, gallery_id)))
    query = (
        select(Gallery)
        .where(Gallery.id == gallery_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the state after the lock, not before
    )
    row = session.scalars(query).one_or_none()
    if row is None:  # deleted while we waited for the lock
        raise NotFoundError(f"gallery {name!r} not found")
    return row


def create_gallery(session: Session, config: GalleryConfig) -> Gallery:
    if session.scalar(select(Gallery.id).where(Gallery.name == config.name)) is not None:
        raise AlreadyExistsError(f"gallery {config.name!r} already exists")
    row = Gallery(
        uid=uuid.uuid4().hex,
        name=config.name,
        model_name=config.model_name,
        model_sha256=config.model_sha256,
        dim=config.dim,
        match_threshold=config.settings.match_threshold,
        duplicate_threshold=config.settings.duplicate_threshold,
        verify_threshold=config.settings.verify_threshold,
        gate_policy=config.settings.gate_policy,
        store_crops=config.store_crops,
        index_kind=config.index_kind,
        stored_attributes=list(config.stored_attributes) or None,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent creator won the race
        raise AlreadyExistsError(f"gallery {config.name!r} already exists") from error
    return row


def list_galleries(session: Session) -> list[Gallery]:
    return list(session.scalars(select(Gallery).order_by(Gallery.name)))


def gallery_counts(session: Session, gallery_id: int) -> tuple[int, int]:
    identities = session.scalar(
        select(func.count()).select_from(Identity).where(Identity.gallery_id == gallery_id)
    )
    return int(identities or 0), count_faces(session, gallery_id)


def count_faces(session: Session, gallery_id: int) -> int:
    query = select(func.count()).select_from(Face).where(Face.gallery_id == gallery_id)
    return int(session.scalar(query) or 0)


def delete_gallery(session: Session, row: Gallery) -> None:
    """Delete a gallery locked with `lock_gallery`, with everything it holds."""
    # Explicit deletes (children first) rather than relying on ON DELETE CASCADE alone.
    session.execute(delete(Change).where(Change.gallery_id == row.id))
    session.execute(delete(EnrollReceipt).where(EnrollReceipt.gallery_id == row.id))
    session.execute(delete(Face).where(Face.gallery_id == row.id))
    session.execute(delete(Identity).where(Identity.gallery_id == row.id))
    session.delete(row)
    session.flush()


def set_model(row: Gallery, name: str, sha256: str, dim: int) -> None:
    """Switch a locked gallery to another embedding model (its faces re-embedded)."""
    row.model_name, row.model_sha256, row.dim = name, sha256, dim


def set_index_kind(row: Gallery, kind: str | None) -> None:
    row.index_kind = kind


# ---- identities ---------------------------------------------------------------------------


def find_identity(session: Session, gallery_id: int, external_id: str) -> Identity | None:
    query = select(Identity).where(
        Identity.gallery_id == gallery_id, Identity.external_id == external_id
    )
    return session.scalars(query).one_or_none()


def get_identity(session: Session, gallery_id: int, external_id: str) -> Identity:
    row = find_identity(session, gallery_id, external_id)
    if row is None:
        raise NotFoundError(f"identity {external_id!r} not found")
    return row


def identity_info(session: Session, row: Identity) -> IdentityInfo:
    query = select(Face.id).where(Face.identity_id == row.id).order_by(Face.id)
    face_ids = tuple(session.scalars(query))
    return _identity_info(row, face_ids)


def _identity_info(row: Identity, face_ids: tuple[int, ...]) -> IdentityInfo:
    return IdentityInfo(
        external_id=row.external_id,
        display_name=row.display_name,
        metadata=dict(row.attributes or {}),
        face_ids=face_ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_identities(
    session: Session, gallery_id: int, limit: int, after_id: int
) -> list[tuple[int, IdentityInfo]]:
    """Identities in creation order after a keyset cursor, with their face ids."""
    query = (
        select(Identity)
        .where(Identity.gallery_id == gallery_id, Identity.id > after_id)
        .order_by(Identity.id)
        .limit(limit)
    )
    rows = list(session.scalars(query))
    faces: dict[int, list[int]] = {row.id: [] for row in rows}
    if rows:
        face_query = (
            select(Face.identity_id, Face.id).where(Face.identity_id.in_(faces)).order_by(Face.id)
        )
        for identity_id, face_id in session.execute(face_query):
            faces[identity_id].append(face_id)
    return [(row.id, _identity_info(row, tuple(faces[row.id]))) for row in rows]


def enroll_identity(
    session: Session,
    gallery_id: int,
    external_id: str,
    display_name: str | None,
    metadata: dict[str, Any] | None,
) -> tuple[Identity, bool]:
    """The identity, created if new, and whether it was; a given display name replaces the
    stored one, given metadata is merged over the stored metadata."""
    row = find_identity(session, gallery_id, external_id)
    if row is None:
        row = Identity(
            gallery_id=gallery_id,
            external_id=external_id,
            display_name=display_name,
            attributes=checked_metadata(metadata or {}),
        )
        session.add(row)
        session.flush()
        return row, True
    merged = {**(row.attributes or {}), **metadata} if metadata else None
    update_identity(row, display_name, merged)
    return row, False


def update_identity(
    row: Identity, display_name: str | None, metadata: dict[str, Any] | None
) -> None:
    if display_name is not None:
        row.display_name = display_name
    if metadata is not None:
        row.attributes = checked_metadata(metadata)
    row.updated_at = utcnow()


def checked_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata to store, refused when the identity's whole metadata (merged inside
    the transaction) is over MAX_METADATA_BYTES: one identity must not grow every
    response that carries it without bound."""
    size = len(json.dumps(metadata, ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"the identity's metadata would be {size:,} bytes as JSON; the limit is "
            f"{MAX_METADATA_BYTES:,} bytes"
        )
    return dict(metadata)


def find_receipt(session: Session, gallery_id: int, request_id: str) -> EnrollReceipt | None:
    query = select(EnrollReceipt).where(
        EnrollReceipt.gallery_id == gallery_id, EnrollReceipt.request_id == request_id
    )
    return session.scalars(query).one_or_none()


def add_receipt(
    session: Session, gallery_id: int, request_id: str, external_id: str, receipt: dict[str, Any]
) -> None:
    session.add(
        EnrollReceipt(
            gallery_id=gallery_id, request_id=request_id, external_id=external_id, receipt=receipt
        )
    )
    session.flush()


def delete_identity(session: Session, row: Identity) -> tuple[list[int], int | None]:
    """Delete an identity and its faces; returns the face ids and the last change seq."""
    face_ids = list(session.scalars(select(Face.id).where(Face.identity_id == row.id)))
    session.execute(delete(Face).where(Face.identity_id == row.id))
    session.execute(  # a forgotten identity leaves no trace, not even its receipts
        delete(EnrollReceipt).where(
            EnrollReceipt.gallery_id == row.gallery_id,
            EnrollReceipt.external_id == row.external_id,
        )
    )
    session.delete(row)
    if not face_ids:  # no face row carries the news: followers must drop the identity
        return face_ids, record_identity_change(session, row.gallery_id, row.id)
    return face_ids, record_changes(session, row.gallery_id, face_ids, OP_REMOVED, row.id)


# ---- faces --------------------------------------------------------------------------------


def insert_faces(
    session: Session,
    gallery: Gallery,
    identity: Identity,
    faces: Sequence[NewFace],
    vectors: np.ndarray,
) -> tuple[list[int], int | None]:
    """Insert faces (vectors already validated and normalised); returns ids and last seq."""
    rows = [
        Face(
            identity_id=identity.id,
            gallery_id=gallery.id,
            embedding=encode_embedding(vector),
            model_name=gallery.model_name,
            model_sha256=gallery.model_sha256,
            box=[float(v) for v in face.box] if face.box is not None else None,
            landmarks=_landmarks(face.landmarks),
            detector_score=_optional_float(face.detector_score),
            quality=face.quality,
            liveness_score=_optional_float(face.liveness_score),
            source_sha256=face.source_sha256,
            attributes=_attributes(face.attributes),
            crop=face.crop if gallery.store_crops else None,
        )
        for face, vector in zip(faces, vectors, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    ids = [row.id for row in rows]
    identity.updated_at = utcnow()
    return ids, record_changes(session, gallery.id, ids, OP_ADDED, identity.id)


def _landmarks(points: Any) -> list[list[float]] | None:
    if points is None:
        return None
    return np.asarray(points, dtype=float).reshape(-1, 2).tolist()


def _attributes(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON object or None; the check happens before the INSERT, not in the driver."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise InvalidArgumentError(f"face attributes must be a JSON object, got {type(values)}")
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"face attributes are not JSON: {error}") from error
    return values


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def face_info(session: Session, gallery_id: int, face_id: int) -> FaceInfo:
    query = (
        select(Face, Identity.external_id, Face.crop.is_not(None))
        .join(Identity, Face.identity_id == Identity.id)
        .where(Face.id == face_id, Face.gallery_id == gallery_id)
    )
    found = session.execute(query).one_or_none()
    if found is None:
        raise NotFoundError(f"face {face_id} not found")
    row, external_id, has_crop = found
    return FaceInfo(
        id=row.id,
        external_id=external_id,
        model_name=row.model_name,
        model_sha256=row.model_sha256,
        box=row.box,
        landmarks=row.landmarks,
        detector_score=row.detector_score,
        quality=row.quality,
        liveness_score=row.liveness_score,
        source_sha256=row.source_sha256,
        has_crop=bool(has_crop),
        created_at=row.created_at,
        attributes=row.attributes,
    )


def face_crop(session: Session, gallery_id: int, face_id: int) -> bytes | None:
    query = select(Face.crop).where(Face.id == face_id, Face.gallery_id == gallery_id)
    found = session.execute(query).one_or_none()
    if found is None:
        raise NotFoundError(f"face {face_id} not found")
    return found[0]


def delete_face(session: Session, gallery_id: int, face_id: int) -> int | None:
    """Delete one face; returns the change seq. The identity stays (possibly faceless)."""
    owner = session.scalar(
        select(Face.identity_id).where(Face.id == face_id, Face.gallery_id == gallery_id)
    )
    statement = delete(Face).where(Face.id == face_id, Face.gallery_id == gallery_id)
    result = cast("CursorResult[Any]", session.execute(statement))  # a DML result
    if owner is None or result.rowcount != 1:
        raise NotFoundError(f"face {face_id} not found")
    return record_changes(session, gallery_id, [face_id], OP_REMOVED, owner)


def face_labels(
    session: Session, gallery_id: int, face_ids: Iterable[int]
) -> dict[int, tuple[str, str | None, dict[str, Any]]]:
    """face id -> (external id, display name, metadata) for the faces that still exist."""
    ids = sorted({int(face_id) for face_id in face_ids})
    labels: dict[int, tuple[str, str | None, dict[str, Any]]] = {}
    for start in range(0, len(ids), 5000):  # bounded IN lists
        query = (
            select(Face.id, Identity.external_id, Identity.display_name, Identity.attributes)
            .join(Identity, Face.identity_id == Identity.id)
            .where(Face.gallery_id == gallery_id, Face.id.in_(ids[start : start + 5000]))
        )
        labels.update(
            (row[0], (row[1], row[2], dict(row[3] or {}))) for row in session.execute(query)
        )
    return labels


def face_attributes(
    session: Session, gallery_id: int, face_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """face id -> stored attributes, for the listed faces that exist and have some."""
    ids = sorted({int(face_id) for face_id in face_ids})
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 5000):  # bounded IN lists
        query = select(Face.id, Face.attributes).where(
            Face.gallery_id == gallery_id, Face.id.in_(ids[start : start + 5000])
        )
        # A JSON null and SQL NULL both mean "nothing stored".
        found.update((row[0], dict(row[1])) for row in session.execute(query) if row[1])
    return found


def faces_without_crop(session: Session, gallery_id: int) -> int:
    query = (
        select(func.count())
        .select_from(Face)
        .where(Face.gallery_id == gallery_id, Face.crop.is_(None))
    )
    return int(session.scalar(query) or 0)


def face_ids(session: Session, gallery_id: int) -> list[int]:
    query = select(Face.id).where(Face.gallery_id == gallery_id).order_by(Face.id)
    return list(session.scalars(query))


def crops(session: Session, gallery_id: int, ids: Sequence[int]) -> list[tuple[int, bytes | None]]:
    query = (
        select(Face.id, Face.crop)
        .where(Face.gallery_id == gallery_id, Face.id.in_(list(ids)))
        .order_by(Face.id)
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def set_embeddings(
    session: Session, gallery_id: int, vectors: dict[int, np.ndarray], name: str, sha256: str
) -> None:
    """Replace the embeddings of the given faces (one executemany, not a query per face)."""
    if not vectors:
        return
    table = Base.metadata.tables[Face.__tablename__]
    statement = (
        table.update()
        .where(table.c.id == bindparam("face_id"), table.c.gallery_id == gallery_id)
        .values(embedding=bindparam("vector"), model_name=name, model_sha256=sha256)
    )
    rows = [
        {"face_id": face_id, "vector": encode_embedding(vector)}
        for face_id, vector in vectors.items()
    ]
    session.execute(statement, rows)


# ---- change log and index source ----------------------------------------------------------


def record_changes(
    session: Session, gallery_id: int, face_ids: Sequence[int], op: str, identity_id: int
) -> int | None:
    """Append one change per face of one identity; returns the last sequence written."""
    if not face_ids:
        return None
    rows = [
        Change(gallery_id=gallery_id, face_id=face_id, identity_id=identity_id, op=op)
        for face_id in face_ids
    ]
    session.add_all(rows)
    session.flush()
    return max(row.seq for row in rows)


def record_identity_change(session: Session, gallery_id: int, identity_id: int) -> int:
    """Append an identity change (relabelled, or deleted with no face); returns its seq.
    The caller holds the gallery's write lock, like every writer of the change log."""
    row = Change(gallery_id=gallery_id, face_id=None, identity_id=identity_id, op=OP_IDENTITY)
    session.add(row)
    session.flush()
    return row.seq


def latest_seq(session: Session, gallery_id: int) -> int:
    query = select(func.max(Change.seq)).where(Change.gallery_id == gallery_id)
    return int(session.scalar(query) or 0)


def gallery_with_latest_seq(session: Session, name: str) -> tuple[Gallery, int]:
    """The gallery and the last change-log sequence of its faces, in one query."""
    latest = select(func.max(Change.seq)).where(Change.gallery_id == Gallery.id)
    query = select(Gallery, latest.scalar_subquery()).where(Gallery.name == name)
    found = session.execute(query).one_or_none()
    if found is None:
        raise NotFoundError(f"gallery {name!r} not found")
    return found[0], int(found[1] or 0)


ChangeRows = list[tuple[int, int | None, str, int | None]]  # seq, face id, op, identity id


def changes_after(session: Session, gallery_id: int, seq: int) -> ChangeRows:
    """(seq, face id, op, identity id) of the gallery's changes after `seq`, in order."""
    query = (
        select(Change.seq, Change.face_id, Change.op, Change.identity_id)
        .where(Change.gallery_id == gallery_id, Change.seq > seq)
        .order_by(Change.seq)
    )
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]


class TailRow(NamedTuple):
    """One change after the watermark, with what the follower needs of its face and of
    the identity it touched, as one statement saw them (`changes_with_labels`)."""

    seq: int
    face_id: int | None  # None: an `identity` change (UpdateIdentity, faceless erasure)
    op: str
    identity_id: int | None  # the identity touched (the face's owner when the row has none)
    owner: int | None  # the face's identity; None: the face is gone (or there is none)
    embedding: bytes | None
    label: tuple[str, str | None, dict[str, Any] | None] | None  # None: identity gone


def changes_with_labels(
    session: Session, gallery_id: int, since: int
) -> tuple[Gallery | None, list[TailRow]]:
    """In ONE statement (one round trip, one snapshot): the gallery's row (None when it is
    gone) and its changes after `since`, in order, each with its face's owner and embedding
    where the face still exists and the label columns of the identity it touched where that
    identity still exists. The change follower's hot path: a LEFT JOIN of gallery ->
    changes -> faces -> identities, so a gallery with no new change is one row of NULLs."""
    # Faces never change owner, so the change's identity is the face's; pre-0006 rows whose
    # face is gone have none (and nothing to label).
    touched = func.coalesce(Change.identity_id, Face.identity_id)
    query = (
        select(
            Gallery,
            Change.seq,
            Change.face_id,
            Change.op,
            touched,
            Face.identity_id,
            Face.embedding,
            Identity.id,
            Identity.external_id,
            Identity.display_name,
            Identity.attributes,
        )
        .select_from(Gallery)
        .outerjoin(Change, (Change.gallery_id == Gallery.id) & (Change.seq > since))
        .outerjoin(Face, (Face.id == Change.face_id) & (Face.gallery_id == Gallery.id))
        .outerjoin(Identity, (Identity.id == touched) & (Identity.gallery_id == Gallery.id))
        .where(Gallery.id == gallery_id)
        .order_by(Change.seq)
    )
    found = session.execute(query).all()
    if not found:
        return None, []
    tail = [
        TailRow(
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            (row[8], row[9], row[10]) if row[7] is not None else None,
        )
        for row in found
        if row[1] is not None
    ]
    return found[0][0], tail


# ---- labels (facedb.storage.labels) -------------------------------------------------------


def face_owners(
    session: Session, gallery_id: int, face_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(face ids, identity ids) of the listed faces that exist (every face of the gallery
    when None), in face id order."""
    query = select(Face.id, Face.identity_id).where(Face.gallery_id == gallery_id)
    if face_ids is None:
        rows = session.execute(query.order_by(Face.id).execution_options(yield_per=50_000))
        pairs = np.asarray(list(rows), dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()
    found: list[tuple[int, int]] = []
    ids = sorted(face_ids)
    for start in range(0, len(ids), 5000):  # bounded IN lists
        chunk = query.where(Face.id.in_(ids[start : start + 5000]))
        found.extend((row[0], row[1]) for row in session.execute(chunk))
    pairs = np.asarray(sorted(found), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def identity_labels(
    session: Session, gallery_id: int, identity_ids: Iterable[int] | None = None
) -> list[tuple[int, str, str | None, dict[str, Any] | None]]:
    """(id, external id, display name, metadata) of the listed identities that exist (every
    identity of the gallery when None)."""
    query = select(
        Identity.id, Identity.external_id, Identity.display_name, Identity.attributes
    ).where(Identity.gallery_id == gallery_id)
    if identity_ids is None:
        return [(r[0], r[1], r[2], r[3]) for r in session.execute(query)]
    found: list[tuple[int, str, str | None, dict[str, Any] | None]] = []
    ids = sorted(identity_ids)
    for start in range(0, len(ids), 5000):
        chunk = query.where(Identity.id.in_(ids[start : start + 5000]))
        found.extend((r[0], r[1], r[2], r[3]) for r in session.execute(chunk))
    return found


def embeddings(
    session: Session, gallery_id: int, ids: Sequence[int], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the listed faces that still exist, in id order."""
    found_ids: list[int] = []
    vectors: list[np.ndarray] = []
    for start in range(0, len(ids), 5000):  # bounded IN lists
        chunk = list(ids[start : start + 5000])
        query = (
            select(Face.id, Face.embedding)
            .where(Face.gallery_id == gallery_id, Face.id.in_(chunk))
            .order_by(Face.id)
        )
        for face_id, data in session.execute(query):
            found_ids.append(face_id)
            vectors.append(decode_embedding(data))
    return _stack(found_ids, vectors, dim)


def identity_embeddings(session: Session, identity_id: int, dim: int) -> np.ndarray:
    """(n, dim) embeddings of one identity's faces, in face id order."""
    query = select(Face.embedding).where(Face.identity_id == identity_id).order_by(Face.id)
    rows = [decode_embedding(data) for data in session.scalars(query)]
    return np.vstack(rows) if rows else np.empty((0, dim), dtype=np.float32)


def all_embeddings(session: Session, gallery_id: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every face in the gallery, streamed in id order."""
    total = count_faces(session, gallery_id)
    ids = np.empty(total, dtype=np.int64)
    vectors = np.empty((total, dim), dtype=np.float32)
    query = (
        select(Face.id, Face.embedding)
        .where(Face.gallery_id == gallery_id)
        .order_by(Face.id)
        .execution_options(yield_per=10_000)
    )
    filled = 0
    for face_id, data in session.execute(query):
        ids[filled] = face_id
        vectors[filled] = decode_embedding(data)
        filled += 1
    return ids[:filled], vectors[:filled]


def _stack(ids: list[int], vectors: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    if not ids:
        return np.empty(0, dtype=np.int64), np.empty((0, dim), dtype=np.float32)
    return np.asarray(ids, dtype=np.int64), np.vstack(vectors).astype(np.float32, copy=False)
