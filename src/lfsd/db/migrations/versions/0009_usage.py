"""Usage counters per repository and per owner, their daily history, and quotas.

The counters are kept in the transaction of every link and unlink from now on; here they are filled once from the
index (one GROUP BY), and today's history row is written for every repository that holds something. Earlier days
have no history (the index never recorded removals, so a past figure could not be told exactly).

Revision ID: 0009
Revises: 0008
"""

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _owner_type(bind: Connection) -> sa.types.TypeEngine[str]:
    # Byte-exact like the repository paths it is cut from (lfsd.db.tables.exact_collation, copied: a migration
    # must not change when the code does).
    if bind.dialect.name not in ("mysql", "mariadb"):
        return sa.String(100)
    from sqlalchemy.dialects import mysql

    if getattr(bind.dialect, "is_mariadb", False):
        collation = "utf8mb4_nopad_bin"
    else:
        version = getattr(bind.dialect, "server_version_info", None) or (0,)
        collation = "utf8mb4_0900_bin" if version >= (8, 0) else "utf8mb4_bin"
    return mysql.VARCHAR(100, charset="utf8mb4", collation=collation)


def upgrade() -> None:
    bind = op.get_bind()
    repo_usage = op.create_table(
        "repo_usage",
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("objects", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quota_bytes", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("repo_id", name="pk_repo_usage"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], name="fk_repo_usage_repo_id_repos", ondelete="CASCADE"),
    )
    owner_usage = op.create_table(
        "owner_usage",
        sa.Column("owner", _owner_type(bind), nullable=False),
        sa.Column("objects", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("quota_bytes", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("owner", name="pk_owner_usage"),
    )
    usage_days = op.create_table(
        "usage_days",
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("objects", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("repo_id", "day", name="pk_usage_days"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], name="fk_usage_days_repo_id_repos", ondelete="CASCADE"),
    )
    _backfill(bind, repo_usage, owner_usage, usage_days)


def _backfill(bind: Connection, repo_usage: sa.Table, owner_usage: sa.Table, usage_days: sa.Table) -> None:
    held = sa.text(
        "SELECT r.id, r.path, COUNT(o.oid) AS held, COALESCE(SUM(o.size), 0) AS bytes, MAX(ro.created_at) AS last "
        "FROM repos r LEFT JOIN repo_objects ro ON ro.repo_id = r.id LEFT JOIN objects o ON o.oid = ro.oid "
        "GROUP BY r.id, r.path"
    )
    now = datetime.now(UTC)
    today = now.date()
    repo_rows, day_rows = [], []
    owners: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in bind.execute(held):
        last = row.last
        if isinstance(last, str):
            last = datetime.fromisoformat(last)
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if bind.dialect.name != "postgresql" and last is not None:
            last = last.astimezone(UTC).replace(tzinfo=None)  # stored naive UTC, as lfsd.db.tables.UtcDateTime
        objects, size = int(row.held), int(row.bytes)
        repo_rows.append({"repo_id": row.id, "objects": objects, "bytes": size, "last_push_at": last})
        owner = str(row.path).split("/", 1)[0]
        owners[owner][0] += objects
        owners[owner][1] += size
        if objects:
            day_rows.append({"repo_id": row.id, "day": today, "objects": objects, "bytes": size})
    if repo_rows:
        op.bulk_insert(repo_usage, repo_rows)
    if owners:
        op.bulk_insert(owner_usage, [{"owner": k, "objects": v[0], "bytes": v[1]} for k, v in sorted(owners.items())])
    if day_rows:
        op.bulk_insert(usage_days, day_rows)


def downgrade() -> None:
    op.drop_table("usage_days")
    op.drop_table("owner_usage")
    op.drop_table("repo_usage")
