"""The verify threshold is a gallery column like the other thresholds.

It used to hide in the gate-policy JSON as "verify_threshold"; the upgrade moves each stored
value into the new column (and out of the JSON), the downgrade moves it back.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_KEY = "verify_threshold"
galleries = sa.table(
    "galleries",
    sa.column("id", sa.Integer()),
    sa.column("gate_policy", sa.JSON()),
    sa.column("verify_threshold", sa.Float()),
)


def upgrade() -> None:
    op.add_column("galleries", sa.Column("verify_threshold", sa.Float(), nullable=True))
    if context.is_offline_mode():
        return  # no rows to read when only SQL text is emitted
    connection = op.get_bind()
    for gallery_id, policy in connection.execute(
        sa.select(galleries.c.id, galleries.c.gate_policy)
    ):
        if isinstance(policy, dict) and JSON_KEY in policy:
            rest = {key: value for key, value in policy.items() if key != JSON_KEY}
            _update(connection, gallery_id, gate_policy=rest, verify_threshold=policy[JSON_KEY])


def downgrade() -> None:
    if not context.is_offline_mode():
        connection = op.get_bind()
        query = sa.select(galleries.c.id, galleries.c.gate_policy, galleries.c.verify_threshold)
        for gallery_id, policy, threshold in connection.execute(query):
            if threshold is not None:
                merged = {**(policy if isinstance(policy, dict) else {}), JSON_KEY: threshold}
                _update(connection, gallery_id, gate_policy=merged)
    with op.batch_alter_table("galleries") as batch:  # SQLite drops a column by copying
        batch.drop_column("verify_threshold")


def _update(connection: sa.Connection, gallery_id: int, **values: Any) -> None:
    connection.execute(galleries.update().where(galleries.c.id == gallery_id).values(**values))
