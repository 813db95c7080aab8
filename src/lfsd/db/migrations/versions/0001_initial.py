"""Users, tokens, repositories, grants and the object index.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_tokens_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("digest", name="uq_tokens_digest"),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "repos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repos"),
        sa.UniqueConstraint("path", name="uq_repos_path"),
    )
    op.create_table(
        "grants",
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("permission", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("repo_id", "user_id", name="pk_grants"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], name="fk_grants_repo_id_repos", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_grants_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_grants_user_id", "grants", ["user_id"])
    op.create_table(
        "objects",
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("oid", name="pk_objects"),
    )
    op.create_table(
        "repo_objects",
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("repo_id", "oid", name="pk_repo_objects"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], name="fk_repo_objects_repo_id_repos", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["oid"], ["objects.oid"], name="fk_repo_objects_oid_objects"),
    )
    op.create_index("ix_repo_objects_oid", "repo_objects", ["oid"])


def downgrade() -> None:
    op.drop_table("repo_objects")
    op.drop_table("objects")
    op.drop_table("grants")
    op.drop_table("repos")
    op.drop_table("tokens")
    op.drop_table("users")
