"""The SQL side, opened together over one ``Database``, and the schema policy: when lfsd may migrate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lfsd.core.ports import PasswordHasher
from lfsd.db.audit import SqlAuditLog
from lfsd.db.database import Database
from lfsd.db.locks import SqlLockRepository
from lfsd.db.objects import SqlObjectIndex
from lfsd.db.repos import SqlRepoDirectory
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.db.tokens import SqlTokenAdmin
from lfsd.db.usage import SqlUsageStore, UsageCounters
from lfsd.db.users import SqlUserDirectory

Migrator = Callable[[Database], Awaitable[None]]


class SchemaMismatch(RuntimeError):
    """The database schema is not the one this lfsd needs (and may not be migrated here)."""


def may_migrate(dialect: str, requested: bool | None) -> bool:
    """True or False decides; None (no one asked) upgrades only SQLite, the embedded database. MySQL and
    PostgreSQL are upgraded by ``lfsd migrate`` or ``serve --migrate``, which an operator runs on purpose."""
    return requested if requested is not None else dialect == "sqlite"


async def upgrade_in_process(db: Database) -> None:
    from lfsd.db.migrate import upgrade  # Alembic is loaded only when there is something to do

    await upgrade(db)


async def ensure_schema(db: Database, *, allowed: bool, migrator: Migrator = upgrade_in_process) -> None:
    """The one schema step: nothing when current; an error when newer, or behind and not ``allowed``; else
    ``migrator``, checked afterwards."""
    revision = await schema_revision(db)
    if revision == SCHEMA_HEAD:
        return
    if revision is not None and revision > SCHEMA_HEAD:  # revisions are zero-padded sequence numbers
        raise SchemaMismatch(
            f"the database schema ({revision}) is newer than this lfsd's ({SCHEMA_HEAD}); upgrade lfsd"
        )
    if not allowed:
        raise SchemaMismatch(
            f"the database schema is at {revision or 'nothing'}, lfsd needs {SCHEMA_HEAD}: "
            "run `lfsd migrate` or start with `lfsd serve --migrate`"
        )
    await migrator(db)
    revision = await schema_revision(db)
    if revision != SCHEMA_HEAD:
        raise SchemaMismatch(f"the migration left the database schema at {revision or 'nothing'}, not {SCHEMA_HEAD}")


@dataclass
class Metadata:
    """Users, repositories, the object index and locks: shared by the server and the CLI."""

    db: Database
    users: SqlUserDirectory
    repos: SqlRepoDirectory
    objects: SqlObjectIndex
    locks: SqlLockRepository
    passwords: PasswordHasher
    tokens: SqlTokenAdmin
    audit: SqlAuditLog
    usage: SqlUsageStore

    @classmethod
    def over(cls, db: Database, passwords: PasswordHasher, *, default_quota: int | None = None) -> Metadata:
        """``default_quota``: the bytes a repository without a quota of its own may hold (None or 0: no limit)."""
        return cls(
            db,
            SqlUserDirectory(db, passwords),
            SqlRepoDirectory(db),
            SqlObjectIndex(db, UsageCounters(db.dialect, default_quota)),
            SqlLockRepository(db),
            passwords,
            SqlTokenAdmin(db),
            SqlAuditLog(db),
            SqlUsageStore(db, default_quota),
        )

    async def close(self) -> None:
        await self.db.dispose()
        self.passwords.close()
