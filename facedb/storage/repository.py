"""SQL reads and writes, one short function per operation, all inside a caller's session.

Every write that changes which faces a gallery holds also appends to the change log in the
same transaction, and locks the gallery row first: on PostgreSQL that makes one gallery's
writers commit in change-sequence order, so a snapshot watermark never skips a change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.storage.errors import AlreadyExistsError, NotFoundError
from facedb.storage.records import (
    FaceInfo,
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    IdentityInfo,
    NewFace,
)
from facedb.storage.tables import OP_ADDED, OP_REMOVED, Change, Face, Gallery, Identity, utcnow

EMBEDDING_DTYPE = np.dtype("<f4")


def encode_embedding(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def decode_embedding(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE)


# ---- galleries ----------------------------------------------------------------------------


def gallery_info(row: Gallery, identity_count: int = 0, face_count: int = 0) -> GalleryInfo:
    settings = GallerySettings(row.match_threshold, row.duplicate_threshold, row.gate_policy)
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
    )


def get_gallery(session: Session, name: str, *, lock: bool = False) -> Gallery:
    query = select(Gallery).where(Gallery.name == name)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
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
        gate_policy=config.settings.gate_policy,
        store_crops=config.store_crops,
        index_kind=config.index_kind,
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


def delete_gallery(session: Session, name: str) -> Gallery:
    row = get_gallery(session, name, lock=True)
    # Explicit deletes (children first) rather than relying on ON DELETE CASCADE alone.
    session.execute(delete(Change).where(Change.gallery_id == row.id))
    session.execute(delete(Face).where(Face.gallery_id == row.id))
    session.execute(delete(Identity).where(Identity.gallery_id == row.id))
    session.delete(row)
    session.flush()
    return row


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


def upsert_identity(
    session: Session,
    gallery_id: int,
    external_id: str,
    display_name: str | None,
    metadata: dict[str, Any] | None,
) -> Identity:
    """The identity, created if new; given display name / metadata replace the stored ones."""
    row = find_identity(session, gallery_id, external_id)
    if row is None:
        row = Identity(
            gallery_id=gallery_id,
            external_id=external_id,
            display_name=display_name,
            attributes=dict(metadata or {}),
        )
        session.add(row)
        session.flush()
        return row
    update_identity(row, display_name, metadata)
    return row


def update_identity(
    row: Identity, display_name: str | None, metadata: dict[str, Any] | None
) -> None:
    if display_name is not None:
        row.display_name = display_name
    if metadata is not None:
        row.attributes = dict(metadata)
    row.updated_at = utcnow()


def delete_identity(session: Session, row: Identity) -> tuple[list[int], int | None]:
    """Delete an identity and its faces; returns the face ids and the last change seq."""
    face_ids = list(session.scalars(select(Face.id).where(Face.identity_id == row.id)))
    session.execute(delete(Face).where(Face.identity_id == row.id))
    session.delete(row)
    return face_ids, record_changes(session, row.gallery_id, face_ids, OP_REMOVED)


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
            crop=face.crop if gallery.store_crops else None,
        )
        for face, vector in zip(faces, vectors, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    ids = [row.id for row in rows]
    identity.updated_at = utcnow()
    return ids, record_changes(session, gallery.id, ids, OP_ADDED)


def _landmarks(points: Any) -> list[list[float]] | None:
    if points is None:
        return None
    return np.asarray(points, dtype=float).reshape(-1, 2).tolist()


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
    )


def face_crop(session: Session, gallery_id: int, face_id: int) -> bytes | None:
    query = select(Face.crop).where(Face.id == face_id, Face.gallery_id == gallery_id)
    found = session.execute(query).one_or_none()
    if found is None:
        raise NotFoundError(f"face {face_id} not found")
    return found[0]


def delete_face(session: Session, gallery_id: int, face_id: int) -> int | None:
    """Delete one face; returns the change seq. The identity stays (possibly faceless)."""
    result = session.execute(delete(Face).where(Face.id == face_id, Face.gallery_id == gallery_id))
    if result.rowcount != 1:
        raise NotFoundError(f"face {face_id} not found")
    return record_changes(session, gallery_id, [face_id], OP_REMOVED)


def face_labels(
    session: Session, gallery_id: int, face_ids: Iterable[int]
) -> dict[int, tuple[str, str | None, dict[str, Any]]]:
    """face id -> (external id, display name, metadata) for the faces that still exist."""
    ids = sorted({int(face_id) for face_id in face_ids})
    labels = {}
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


def crops(session: Session, gallery_id: int, ids: Sequence[int]) -> list[tuple[int, bytes]]:
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
    table = Face.__table__
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
    session: Session, gallery_id: int, face_ids: Sequence[int], op: str
) -> int | None:
    """Append one change per face; returns the last sequence number written."""
    if not face_ids:
        return None
    rows = [Change(gallery_id=gallery_id, face_id=face_id, op=op) for face_id in face_ids]
    session.add_all(rows)
    session.flush()
    return max(row.seq for row in rows)


def latest_seq(session: Session, gallery_id: int) -> int:
    query = select(func.max(Change.seq)).where(Change.gallery_id == gallery_id)
    return int(session.scalar(query) or 0)


def changes_after(session: Session, gallery_id: int, seq: int) -> list[tuple[int, int, str]]:
    query = (
        select(Change.seq, Change.face_id, Change.op)
        .where(Change.gallery_id == gallery_id, Change.seq > seq)
        .order_by(Change.seq)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(query)]


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
