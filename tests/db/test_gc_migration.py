"""Migration 0008 (garbage collection) down and up again on every database, with objects in place."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, text

from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.migrate import current_revision, downgrade, upgrade


async def _columns(db: Database, table: str) -> set[str]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda sync: inspect(sync).get_columns(table))
    return {column["name"] for column in found}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_0008_gc_down_and_up_keeps_objects(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    params = {"oid": "a" * 64, "now": datetime(2026, 1, 1)}  # naive: what every driver stores in these columns
    try:
        await upgrade(db, "0007")
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO objects (oid, size, created_at) VALUES (:oid, 3, :now)"), params)
        await upgrade(db, "0008")
        assert {"unlinked_at", "touched_at", "gc_claim"} <= await _columns(db, "objects")
        assert "gc_lease" in await _tables(db)
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE objects SET unlinked_at = :now, touched_at = :now"), params)
            await conn.execute(text("INSERT INTO gc_lease (name, holder, expires_at) VALUES ('gc', 'x', :now)"), params)

        await downgrade(db, "0007")
        assert "gc_lease" not in await _tables(db)
        assert not {"unlinked_at", "touched_at", "gc_claim"} & await _columns(db, "objects")
        async with db.transaction() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM objects"))).scalar_one() == 1
        await upgrade(db, "0008")
        assert await current_revision(db) == "0008"
        async with db.transaction() as conn:
            row = (await conn.execute(text("SELECT size, unlinked_at FROM objects"))).one()
        assert (row.size, row.unlinked_at) == (3, None)
    finally:
        await db.dispose()
