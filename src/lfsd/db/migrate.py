"""Alembic migrations, run on a connection lfsd already holds (no alembic.ini), one process at a time."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from lfsd.core.errors import ServiceUnavailable
from lfsd.db.aio import AsyncConnection
from lfsd.db.database import Database
from lfsd.offload import in_thread

_SCRIPTS = Path(__file__).parent / "migrations"
_LOCK_NAME = "lfsd_migrate"
_LOCK_KEY = 0x6C667364  # "lfsd", the PostgreSQL advisory lock key
_LOCK_WAIT_SECONDS = 600


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(connection), revision)


def _current(connection: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


@asynccontextmanager
async def _sqlite_file_lock(db: Database) -> AsyncIterator[None]:
    """SQLite has no server to hold a lock: processes on one file take a file lock beside it.

    Only for SQLite: MySQL/MariaDB and PostgreSQL hold their own lock (:func:`_take_server_lock`), and their URL's
    database is a name, not a path, so a lock file would land in whatever the working directory happens to be.
    """
    name = db.engine.url.database
    if db.dialect != "sqlite" or not name or name == ":memory:":
        yield
        return
    database = Path(name)
    fd = os.open(database.with_name(f"{database.name}.migrate-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await in_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def _take_server_lock(conn: AsyncConnection) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Held until this transaction ends; PostgreSQL's DDL is transactional, so the whole upgrade is inside.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        got = await conn.scalar(text("SELECT GET_LOCK(:name, :wait)"), {"name": _LOCK_NAME, "wait": _LOCK_WAIT_SECONDS})
        if got != 1:
            raise ServiceUnavailable("another process holds the migration lock; try again")


async def _release_server_lock(conn: AsyncConnection) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        await conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})


@asynccontextmanager
async def _locked(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the database's migration lock, so that processes starting together migrate once."""
    async with _sqlite_file_lock(db), db.transaction(bounded=False) as conn:
        await _take_server_lock(conn)
        try:
            yield conn
        finally:
            await _release_server_lock(conn)


async def upgrade(db: Database, revision: str = "head") -> None:
    async with _locked(db) as conn:
        # Alembic reads the current revision after the lock is held: a process that waited finds nothing to do.
        await conn.run_sync(_upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    async with _locked(db) as conn:
        await conn.run_sync(_downgrade, revision)


async def current_revision(db: Database) -> str | None:
    async with db.transaction() as conn:
        return await conn.run_sync(_current)
