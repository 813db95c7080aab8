"""Migration 0009 on every database: counters backfilled from the index, then down and up again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text

from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.migrate import downgrade, upgrade

NEW_TABLES = {"repo_usage", "owner_usage", "usage_days"}


async def _run(db: Database, sql: str, **params: Any) -> None:
    async with db.transaction() as conn:
        await conn.execute(text(sql.replace(":now", "'2026-01-01 00:00:00'")), {"f": False, **params})


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async with db.transaction() as conn:
        return [tuple(row) for row in await conn.execute(text(sql))]


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_0009_backfills_counters_and_round_trips(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    try:
        await upgrade(db, "0008")
        for path in ("acme/game", "acme/tools", "solo/empty"):
            await _run(db, "INSERT INTO repos (path, is_public, created_at) VALUES (:p, :f, :now)", p=path)
        for oid, size in (("a" * 64, 100), ("b" * 64, 20), ("c" * 64, 3)):
            await _run(db, "INSERT INTO objects (oid, size, created_at) VALUES (:o, :s, :now)", o=oid, s=size)
        for repo_id, oid in ((1, "a"), (1, "b"), (2, "a"), (2, "c")):
            await _run(
                db, "INSERT INTO repo_objects (repo_id, oid, created_at) VALUES (:r, :o, :now)", r=repo_id, o=oid * 64
            )

        await upgrade(db, "0009")
        assert await _rows(db, "SELECT repo_id, objects, bytes FROM repo_usage ORDER BY repo_id") == [
            (1, 2, 120),
            (2, 2, 103),
            (3, 0, 0),
        ]
        assert await _rows(db, "SELECT owner, objects, bytes FROM owner_usage ORDER BY owner") == [
            ("acme", 4, 223),
            ("solo", 0, 0),
        ]
        assert await _rows(db, "SELECT repo_id, objects, bytes FROM usage_days ORDER BY repo_id") == [
            (1, 2, 120),
            (2, 2, 103),
        ]
        (last,) = await _rows(db, "SELECT last_push_at FROM repo_usage WHERE repo_id = 1")
        assert last[0] is not None

        await downgrade(db, "0008")
        assert not await _tables(db) & NEW_TABLES
        await upgrade(db, "0009")
        assert await _tables(db) >= NEW_TABLES
        assert len(await _rows(db, "SELECT repo_id FROM repo_usage")) == 3
    finally:
        await db.dispose()
