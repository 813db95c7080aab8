"""SQLite commits survive power loss: WAL with ``synchronous=FULL`` on every connection lfsd opens."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from lfsd.config import Settings
from lfsd.resources import open_database


async def test_every_connection_syncs_each_commit(tmp_path: Path) -> None:
    db = open_database(Settings(data_dir=tmp_path))
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            # 2 is FULL: NORMAL (1) in WAL mode may lose the last commits, an acknowledged upload's among them.
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2
    finally:
        await db.dispose()
