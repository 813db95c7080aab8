"""The web UI: server-side sessions, and a repository's objects paged by date or size from an index.

``repo_objects.size`` repeats the object's size so that sorting a repository's objects by size reads one index range
instead of joining and sorting every object it holds; existing rows are filled from ``objects``.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_ui_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_ui_sessions_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_ui_sessions_user_id", "ui_sessions", ["user_id"])
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])
    # Plain ADD COLUMN, never a batch rebuild (see 0004).
    op.add_column("repo_objects", sa.Column("size", sa.BigInteger, nullable=True))
    op.execute("UPDATE repo_objects SET size = (SELECT objects.size FROM objects WHERE objects.oid = repo_objects.oid)")
    op.create_index("ix_repo_objects_repo_created", "repo_objects", ["repo_id", "created_at", "oid"])
    op.create_index("ix_repo_objects_repo_size", "repo_objects", ["repo_id", "size", "oid"])


def downgrade() -> None:
    op.drop_index("ix_repo_objects_repo_size", table_name="repo_objects")
    op.drop_index("ix_repo_objects_repo_created", table_name="repo_objects")
    op.drop_column("repo_objects", "size")
    op.drop_table("ui_sessions")  # its indexes with it (MySQL keeps the foreign key's index until then)
