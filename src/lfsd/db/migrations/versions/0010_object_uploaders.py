"""Who first linked each object to a repository: ``repo_objects.uploader_id``, shown as "by" on the objects page.

No foreign key: a plain ADD COLUMN on every database, never a batch rebuild of the largest table (see 0004); a
deleted user's id then names nobody, and the page says so. Rows from before stay NULL (unknown).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repo_objects", sa.Column("uploader_id", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("repo_objects", "uploader_id")
