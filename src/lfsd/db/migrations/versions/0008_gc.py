"""Garbage collection: when the collector first saw an object held by no repository, and the collector's lease.

``objects.unlinked_at`` is set by ``lfsd gc`` for rows no repository holds and cleared by every link of the oid;
``touched_at`` is set by every upload batch naming it. A row is collected only when both are older than the grace
period. ``gc_claim`` marks, inside one transaction, the rows a collector's conditional statement claimed (or a link
has just created and not yet checked against the store). ``gc_lease`` holds one
row per lease name: the collector that holds it runs, the others leave at once.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("objects", sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("objects", sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("objects", sa.Column("gc_claim", sa.String(32), nullable=True))
    op.create_table(
        "gc_lease",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_gc_lease"),
    )


def downgrade() -> None:
    op.drop_table("gc_lease")
    op.drop_column("objects", "gc_claim")
    op.drop_column("objects", "touched_at")
    op.drop_column("objects", "unlinked_at")
