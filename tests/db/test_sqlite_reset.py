"""SQLite's pool reset: a transaction left open on a returned connection is still rolled back (issue 17 made the
reset skip the rollback when none is open, to save a trip to the driver's thread)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from lfsd.db.engine import create_engine, parse_url


async def test_a_transaction_left_open_on_a_returned_connection_is_rolled_back(tmp_path: Path) -> None:
    engine = create_engine(parse_url(f"sqlite:///{tmp_path / 'reset.db'}"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as conn:
            # Behind SQLAlchemy's back, as a cancelled or failed transaction can leave it: only the pool's reset
            # can end this one.
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("BEGIN")
            await driver.execute("INSERT INTO t VALUES (1)")
            assert driver.in_transaction
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is not None
            assert not raw.driver_connection.in_transaction
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_committed_work_stays_and_leaves_no_transaction_open(tmp_path: Path) -> None:
    engine = create_engine(parse_url(f"sqlite:///{tmp_path / 'reset.db'}"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is not None
            assert not raw.driver_connection.in_transaction
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()
