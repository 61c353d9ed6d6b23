"""Enroll receipts: the answer to an Enroll sent with a client request id, kept so that a
retry of the same request writes nothing and gets the same answer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enroll_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "gallery_id",
            sa.Integer(),
            sa.ForeignKey("galleries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("gallery_id", "request_id", name="uq_enroll_receipts_request"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_enroll_receipts_gallery_id", "enroll_receipts", ["gallery_id"])


def downgrade() -> None:
    op.drop_index("ix_enroll_receipts_gallery_id", table_name="enroll_receipts")
    op.drop_table("enroll_receipts")
