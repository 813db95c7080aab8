"""Alembic migrations, run on a connection lfsd already holds (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from lfsd.db.database import Database

_SCRIPTS = Path(__file__).parent / "migrations"


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


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.transaction() as conn:
        await conn.run_sync(_upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    async with db.transaction() as conn:
        await conn.run_sync(_downgrade, revision)


async def current_revision(db: Database) -> str | None:
    async with db.transaction() as conn:
        return await conn.run_sync(_current)
