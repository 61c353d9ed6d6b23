"""Initial schema: galleries, identities, faces, and the index change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Matches facedb.storage.tables.BigId: SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("match_threshold", sa.Float(), nullable=True),
        sa.Column("duplicate_threshold", sa.Float(), nullable=True),
        sa.Column("gate_policy", sa.JSON(), nullable=True),
        sa.Column("store_crops", sa.Boolean(), nullable=False),
        sa.Column("index_kind", sa.String(16), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "identities",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("gallery_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("gallery_id", "external_id", name="uq_identities_gallery_external"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_identities_gallery_id", "identities", ["gallery_id"])
    op.create_table(
        "faces",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("identity_id", BigId, nullable=False),
        sa.Column("gallery_id", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("landmarks", sa.JSON(), nullable=True),
        sa.Column("detector_score", sa.Float(), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("liveness_score", sa.Float(), nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("crop", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"], ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_faces_identity_id", "faces", ["identity_id"])
    op.create_index("ix_faces_gallery_id", "faces", ["gallery_id"])
    op.create_table(
        "changes",
        sa.Column("seq", BigId, primary_key=True),
        sa.Column("gallery_id", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"], ondelete="CASCADE"),
        sa.CheckConstraint("op IN ('added', 'removed')", name="ck_changes_op"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_gallery_seq", "changes", ["gallery_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_changes_gallery_seq", table_name="changes")
    op.drop_table("changes")
    op.drop_index("ix_faces_gallery_id", table_name="faces")
    op.drop_index("ix_faces_identity_id", table_name="faces")
    op.drop_table("faces")
    op.drop_index("ix_identities_gallery_id", table_name="identities")
    op.drop_table("identities")
    op.drop_table("galleries")
