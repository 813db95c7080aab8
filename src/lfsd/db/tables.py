"""The schema. Portable across SQLite, MySQL/MariaDB and PostgreSQL: bounded VARCHARs, explicit indexes.

The sizes that requests can reach are the core's constants, so that what the edge accepts is what a column holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from lfsd.core.audit import MAX_ACTION_LENGTH, MAX_ACTOR_LENGTH, MAX_ADDRESS_LENGTH, MAX_TARGET_LENGTH
from lfsd.core.lockpath import MAX_LOCK_PATH_LENGTH
from lfsd.core.locks import MAX_REF_LENGTH
from lfsd.core.names import MAX_USER_NAME_LENGTH
from lfsd.core.repo import MAX_LENGTH as MAX_REPO_PATH_LENGTH
from lfsd.core.sshkeys import MAX_KEY_LABEL_LENGTH, MAX_KEY_TYPE_LENGTH
from lfsd.core.tokens import MAX_TOKEN_LABEL_LENGTH
from lfsd.core.usage import MAX_OWNER_LENGTH

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    MySQL's DATETIME and SQLite keep no zone: values are stored as naive UTC and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: lfsd stores aware UTC times only")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def exact_collation(dialect: Dialect) -> str:
    """The MySQL/MariaDB collation that compares every byte (migration 0003 chose it the same way).

    ``utf8mb4_bin`` is not enough: it ignores trailing spaces (PAD SPACE), so ``alice `` would be ``alice``.
    """
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version: tuple[int, ...] = getattr(dialect, "server_version_info", None) or (0,)
    return "utf8mb4_0900_bin" if version >= (8, 0) else "utf8mb4_bin"


class ExactString(TypeDecorator[str]):
    """A VARCHAR that compares byte for byte on every database.

    SQLite's BINARY and PostgreSQL's deterministic default collations already do. MySQL and MariaDB default to
    case- and accent-insensitive collations, under which ``ALICE`` logs in as ``alice`` and ``acme/Game`` is
    ``acme/game``: there the column gets ``exact_collation``.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int, **kwargs: Any) -> None:
        super().__init__(length, **kwargs)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql  # only on MySQL: its module costs memory elsewhere (issue 17)

            exact = mysql.VARCHAR(self.length, charset="utf8mb4", collation=exact_collation(dialect))
            return dialect.type_descriptor(exact)
        return dialect.type_descriptor(String(self.length))


metadata = MetaData(naming_convention=NAMING)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", ExactString(MAX_USER_NAME_LENGTH), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_active_at", UtcDateTime(), nullable=True),
    # A deleted user is a tombstone (renamed, disabled, without tokens or grants) so that their locks stay.
    Column("deleted_at", UtcDateTime(), nullable=True),
    UniqueConstraint("name"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", ExactString(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("label", String(MAX_TOKEN_LABEL_LENGTH), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("scope", SmallInteger, nullable=False, server_default="2"),  # a Permission: 1 read, 2 write
    Column("last_used_at", UtcDateTime(), nullable=True),
    UniqueConstraint("digest"),
    Index(None, "user_id"),
)

repos = Table(
    "repos",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", ExactString(MAX_REPO_PATH_LENGTH), nullable=False),
    Column("is_public", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("locking_enabled", Boolean, nullable=False, server_default=true()),
    # Links issued before it have their object checked against the index again (migration 0005).
    Column("objects_removed_at", UtcDateTime(), nullable=True),
    UniqueConstraint("path"),
)

grants = Table(
    "grants",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("permission", SmallInteger, nullable=False),
    Index(None, "user_id"),
)

objects = Table(
    "objects",
    metadata,
    Column("oid", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Garbage collection (migration 0008, docs/operations.md): when `lfsd gc` first saw the row held by no repository
    # (cleared by a link), the last upload batch naming it, and the claim of a collector's (or link's) transaction.
    Column("unlinked_at", UtcDateTime(), nullable=True),
    Column("touched_at", UtcDateTime(), nullable=True),
    Column("gc_claim", String(32), nullable=True),
    # No index on unlinked_at: SQLite chose it over the primary key for the collector's page and claim (every marked
    # row is in range) and scanned the table once per page, 580 objects/s at 100,000; the collector walks the key.
)

repo_objects = Table(
    "repo_objects",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("oid", String(64), ForeignKey("objects.oid"), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # The object's size again (migration 0006), so a repository's objects page by size from one index.
    Column("size", BigInteger, nullable=True),
    # Who first linked the object to this repository (migration 0010): the uploader, or the pusher whose batch linked
    # an object another repository already held. NULL for rows from before, anonymous links and the command line.
    Column("uploader_id", Integer, nullable=True),
    # When an upload batch last found the repository holding the object (migration 0011): a pointer to it may be on
    # its way, so ``gc --unreachable`` keeps it for the grace period, as it keeps a new link.
    Column("confirmed_at", UtcDateTime(), nullable=True),
    Index(None, "oid"),
    Index("ix_repo_objects_repo_created", "repo_id", "created_at", "oid"),
    Index("ix_repo_objects_repo_size", "repo_id", "size", "oid"),
)

locks = Table(
    "locks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("path", ExactString(MAX_LOCK_PATH_LENGTH), nullable=False),
    # The unique key is a digest of the path: MySQL cannot index a 1024-character utf8mb4 column.
    Column("path_key", ExactString(64), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("ref", ExactString(MAX_REF_LENGTH), nullable=True),
    Column("locked_at", UtcDateTime(), nullable=False),
    UniqueConstraint("repo_id", "path_key"),
    Index(None, "owner_id"),
    sqlite_autoincrement=True,  # never reuse a lock id
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(MAX_ACTOR_LENGTH), nullable=False),
    Column("action", String(MAX_ACTION_LENGTH), nullable=False),
    Column("target", String(MAX_TARGET_LENGTH), nullable=False),
    Column("address", String(MAX_ADDRESS_LENGTH), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("details", Text, nullable=False),  # JSON; never a secret
    Index(None, "at"),
)

# Web UI sessions (migration 0006): only a SHA-256 of the session id is stored.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),  # lowercase hex: every collation compares it exactly
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

# SSH keys (migration 0007): one key belongs to one user.
ssh_keys = Table(
    "ssh_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key_type", String(MAX_KEY_TYPE_LENGTH), nullable=False),
    Column("public_key", Text, nullable=False),  # the base64 key blob, as in authorized_keys
    # The SHA-256 of the blob in hex (one key belongs to one user); shown as SHA256:base64 like ssh-keygen -lf.
    Column("fingerprint", String(64), nullable=False),
    Column("label", String(MAX_KEY_LABEL_LENGTH), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    UniqueConstraint("fingerprint"),
    Index(None, "user_id"),
)

# The garbage collector's lease (migration 0008): one collector at a time.
gc_lease = Table(
    "gc_lease",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
)

# Usage counters (migration 0009), kept in the transaction of every link and unlink (db/usage.py), never by a scan.
repo_usage = Table(
    "repo_usage",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("objects", BigInteger, nullable=False, server_default="0"),
    Column("bytes", BigInteger, nullable=False, server_default="0"),
    Column("last_push_at", UtcDateTime(), nullable=True),
    Column("quota_bytes", BigInteger, nullable=True),  # None: the server-wide default applies
)

owner_usage = Table(
    "owner_usage",
    metadata,
    Column("owner", ExactString(MAX_OWNER_LENGTH), primary_key=True),  # the OWNER of OWNER/NAME
    Column("objects", BigInteger, nullable=False, server_default="0"),
    Column("bytes", BigInteger, nullable=False, server_default="0"),
    Column("quota_bytes", BigInteger, nullable=True),  # None: no owner quota
)

usage_days = Table(
    "usage_days",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),  # UTC
    Column("objects", BigInteger, nullable=False),  # as the day ended (or now, for today)
    Column("bytes", BigInteger, nullable=False),
)
