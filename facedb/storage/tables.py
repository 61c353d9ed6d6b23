"""SQL tables: the source of truth. Indexes are rebuilt from these tables.

Every table keeps its own primary keys monotonic (SQLite AUTOINCREMENT, PostgreSQL
sequences) so that an id is never reused: a face id deleted from an index must not come
back as another face, and the change log's sequence must only ever grow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid alias; BIGINT would not be.
BigId = BigInteger().with_variant(Integer(), "sqlite")

OP_ADDED = "added"
OP_REMOVED = "removed"
# An identity's labels changed (UpdateIdentity) or it went with no face of its own left:
# no face changed, but every process must re-read the identity (facedb.storage.labels).
OP_IDENTITY = "identity"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Gallery(Base):
    __tablename__ = "galleries"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Random, never reused: names the gallery's index directory, so a snapshot can never be
    # loaded for another gallery (even one with the same name or id in a reset database).
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_name: Mapped[str] = mapped_column(String(256))
    model_sha256: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    match_threshold: Mapped[float | None] = mapped_column(Float)
    duplicate_threshold: Mapped[float | None] = mapped_column(Float)
    verify_threshold: Mapped[float | None] = mapped_column(Float)
    gate_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    store_crops: Mapped[bool] = mapped_column(Boolean, default=True)
    index_kind: Mapped[str | None] = mapped_column(String(16))  # None: the catalog's default
    # Attribute names the engine measures and stores with each enrolled face; None: none.
    stored_attributes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("gallery_id", "external_id", name="uq_identities_gallery_external"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(
        ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
    # "metadata" is reserved on declarative classes, hence the attribute name.
    attributes: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    faces: Mapped[list[Face]] = relationship(
        back_populates="identity", passive_deletes=True, lazy="raise"
    )


class Face(Base):
    __tablename__ = "faces"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    # Denormalised from the identity so that index rebuilds scan one table.
    gallery_id: Mapped[int] = mapped_column(
        ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, L2-normalised
    model_name: Mapped[str] = mapped_column(String(256))
    model_sha256: Mapped[str] = mapped_column(String(64))
    box: Mapped[list[float] | None] = mapped_column(JSON)  # x1, y1, x2, y2 in source pixels
    landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON)  # 5 x (x, y)
    detector_score: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    liveness_score: Mapped[float | None] = mapped_column(Float)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    # The engine's measured attributes (age, gender, ...), stored for audit; opaque JSON here.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Opaque bytes (the aligned crop, encoded by the caller); deferred so scans skip it.
    crop: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    identity: Mapped[Identity] = relationship(back_populates="faces", lazy="raise")


class EnrollReceipt(Base):
    """What an Enroll with a client request id answered, so that a retry writes nothing
    and gets the same answer. The receipt is the engine's (opaque here); it names face ids
    and the external id, never biometric data."""

    __tablename__ = "enroll_receipts"
    __table_args__ = (
        UniqueConstraint("gallery_id", "request_id", name="uq_enroll_receipts_request"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str] = mapped_column(String(256))
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Change(Base):
    """The change log: replayed after a snapshot's watermark on open, and followed by
    every process for its indexes and its in-memory labels. Each row names the identity it
    touched, so a follower re-reads exactly those identities."""

    __tablename__ = "changes"
    __table_args__ = (
        CheckConstraint(
            f"op IN ('{OP_ADDED}', '{OP_REMOVED}', '{OP_IDENTITY}')", name="ck_changes_op"
        ),
        Index("ix_changes_gallery_seq", "gallery_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    # No FKs: the face or identity row is gone on removal. face_id is None on identity ops;
    # identity_id is None on rows written before revision 0006 whose face is gone.
    face_id: Mapped[int | None] = mapped_column(BigInteger)
    identity_id: Mapped[int | None] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key managed at run time. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # public, for logs and revoking
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the secret
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    galleries: Mapped[list[str]] = mapped_column(JSON)
    view_crops: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit: Mapped[float | None] = mapped_column(Float)  # requests per second; None: no limit
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
