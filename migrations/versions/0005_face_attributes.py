"""Attributes stored with enrolled faces, opt-in per gallery (for audit).

`galleries.stored_attributes`: the attribute names the engine measures and stores at
enrollment (NULL: none). `faces.attributes`: what was measured for the face (NULL: nothing
stored). Both nullable, so existing rows need no backfill.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"  # after main's 0004_api_keys
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("galleries", sa.Column("stored_attributes", sa.JSON(), nullable=True))
    op.add_column("faces", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Dropped in place (SQLite >= 3.35 can), not by batch-copying the tables: copying
    # `galleries` under foreign_keys=ON would cascade-delete every identity and face.
    op.drop_column("faces", "attributes")
    op.drop_column("galleries", "stored_attributes")
