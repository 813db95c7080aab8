"""When an upload batch last found a repository holding an object: ``repo_objects.confirmed_at``.

A batch that answers "the repository has it" means the client is about to push something that points to the object.
``gc --unreachable`` keeps links confirmed within the grace period, as it keeps links made within it: before,
an object unreachable for longer (a branch deleted on the server, then restored by a push) could be unlinked between
the batch and the Git push, and later collected although a ref pointed to it again.

A plain ADD COLUMN, NULL for rows from before (never confirmed), as 0010.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repo_objects", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("repo_objects", "confirmed_at")
