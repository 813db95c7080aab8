"""Turning a database into WAL waits for another process's write lock instead of failing at once.

SQLite answers ``PRAGMA journal_mode=WAL`` with "database is locked" straight away, without its busy handler, while
another connection holds a write lock on a file still in rollback mode: the state of a new database that another
process is creating. Two workers of ``serve --workers 2`` starting on a new data dir stopped the server that way.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from lfsd.db.engine import create_engine, parse_url

HELD_SECONDS = 0.4


async def test_entering_wal_waits_for_a_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x INTEGER)")  # rollback mode, as a new file is until someone turns it to WAL
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(HELD_SECONDS, lambda: other.execute("COMMIT"))
    released.start()
    engine = create_engine(parse_url(f"sqlite:///{path}"))
    try:
        started = time.monotonic()
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            rows = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        waited = time.monotonic() - started
    finally:
        await engine.dispose()
        released.join()
        other.close()
    assert (mode, rows) == ("wal", 0)
    assert waited >= HELD_SECONDS * 0.8  # it did wait for the lock to go
