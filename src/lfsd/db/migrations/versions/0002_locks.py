"""File locks, and a per-repository switch for locking.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        batch.add_column(sa.Column("locking_enabled", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "locks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("path_key", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_locks"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], name="fk_locks_repo_id_repos", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_locks_owner_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("repo_id", "path_key", name="uq_locks_repo_id_path_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_locks_owner_id", "locks", ["owner_id"])


def downgrade() -> None:
    op.drop_table("locks")
    with op.batch_alter_table("repos") as batch:
        batch.drop_column("locking_enabled")
