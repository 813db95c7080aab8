"""When objects were last removed from a repository (``lfsd repo remove-objects``).

A download through a signed link runs no SQL for the object itself; a link issued before this moment has its object
checked against the index again, so a removal stops links handed out before it, not only new batches.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repos", sa.Column("objects_removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("repos", "objects_removed_at")
