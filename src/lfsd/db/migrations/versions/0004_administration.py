"""Administration: token labels, expiry, scopes and last use; user activity and deletion; the audit log.

Deleted users stay as renamed, disabled tombstones (``deleted_at``), so their locks keep an owner to show until
they are forced open; the ``locks.owner_id`` foreign key is left as it is (rebuilding SQLite's ``locks`` table
would reset its AUTOINCREMENT high-water mark, and lock ids must never be reused).

Revision ID: 0004
Revises: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_COLUMNS: list[tuple[str, sa.Column[Any]]] = [
    ("tokens", sa.Column("label", sa.String(100), nullable=True)),
    ("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)),
    ("tokens", sa.Column("scope", sa.SmallInteger, nullable=False, server_default="2")),
    ("tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)),
    ("users", sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True)),
    ("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True)),
]


def upgrade() -> None:
    # Plain ADD/DROP COLUMN, never a batch rebuild: SQLite runs with foreign keys on, and rebuilding ``users``
    # would cascade into tokens, grants and locks.
    for table, column in NEW_COLUMNS:
        op.add_column(table, column)
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(1100), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    # Tombstones of deleted users would be indistinguishable from users: they go (their locks with them).
    op.execute(sa.text("DELETE FROM users WHERE deleted_at IS NOT NULL"))
    for table, column in reversed(NEW_COLUMNS):
        op.drop_column(table, column.name)
