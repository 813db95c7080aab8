"""The schema revision the code expects, read without Alembic so the server only loads it to migrate."""

from __future__ import annotations

from typing import Final

from sqlalchemy import inspect, text

from lfsd.db.database import Database

# The newest migration in db/migrations/versions; a test checks that Alembic agrees.
SCHEMA_HEAD: Final = "0011"


async def schema_revision(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with db.transaction() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    return None if revision is None else str(revision)
