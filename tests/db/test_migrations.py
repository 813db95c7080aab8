"""Migrations upgrade step by step with data in place, and downgrade cleanly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.migrate import current_revision, downgrade, head_revision, upgrade
from lfsd.db.schema import schema_revision


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_with_data_then_downgrade_and_again(tmp_path: Path) -> None:
    db = Database(create_engine(parse_url(f"sqlite:///{tmp_path / 'm.db'}")))
    try:
        assert await schema_revision(db) is None
        await upgrade(db, "0001")
        assert await current_revision(db) == "0001"
        async with db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO repos (path, is_public, created_at) VALUES ('a/b', 0, '2026-01-01 00:00:00')")
            )
        await upgrade(db)
        assert await current_revision(db) == head_revision() == await schema_revision(db)
        async with db.transaction() as conn:
            enabled = (await conn.execute(text("SELECT locking_enabled FROM repos"))).scalar_one()
        assert enabled in (1, True)
        assert "locks" in await _tables(db)

        await downgrade(db, "base")
        assert await _tables(db) <= {"alembic_version"}
        await upgrade(db)
        assert {"users", "tokens", "repos", "grants", "objects", "repo_objects", "locks"} <= await _tables(db)
    finally:
        await db.dispose()
