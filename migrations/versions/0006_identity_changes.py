"""Identity changes travel the change log (in-memory labels follow it, like the indexes).

`changes.identity_id`: the identity a change touched (every op), so a follower re-reads
exactly the identities whose labels may have changed. A new op `identity` records a change
to an identity that touches no face: UpdateIdentity (display name, metadata) and the
deletion of an identity with no face left. Such rows have no face, so `face_id` becomes
nullable. Existing rows get the identity of their face where the face still exists.

SQLite alters the table by copying it (batch mode): nothing references `changes`, so the
copy cascades nothing, and the AUTOINCREMENT counter is carried over so that a sequence
number is never handed out twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPS_BEFORE = "op IN ('added', 'removed')"
OPS_AFTER = "op IN ('added', 'removed', 'identity')"


def upgrade() -> None:
    counter = _sqlite_counter()
    with op.batch_alter_table("changes", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("identity_id", sa.BigInteger(), nullable=True))
        batch.alter_column("face_id", existing_type=sa.BigInteger(), nullable=True)
        batch.drop_constraint("ck_changes_op", type_="check")
        batch.create_check_constraint("ck_changes_op", OPS_AFTER)
    _restore_sqlite_counter(counter)
    op.execute(
        "UPDATE changes SET identity_id = "
        "(SELECT faces.identity_id FROM faces WHERE faces.id = changes.face_id)"
    )


def downgrade() -> None:
    counter = _sqlite_counter()
    op.execute("DELETE FROM changes WHERE op = 'identity'")
    with op.batch_alter_table("changes", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("ck_changes_op", type_="check")
        batch.create_check_constraint("ck_changes_op", OPS_BEFORE)
        batch.alter_column("face_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_column("identity_id")
    _restore_sqlite_counter(counter)


def _sqlite_counter() -> int | None:
    """SQLite's AUTOINCREMENT high-water mark of `changes` (None elsewhere, or unset)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    query = sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
    value = bind.execute(query).scalar()
    return None if value is None else int(value)


def _restore_sqlite_counter(counter: int | None) -> None:
    """The copied table counts on from the old high-water mark, not from its largest row
    (the rows of deleted galleries are gone, their numbers must stay used)."""
    if counter is None:
        return
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'changes'"))
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', :seq)"),
        {"seq": counter},
    )
