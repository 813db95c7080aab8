"""Pool statistics for the metrics endpoint, like Go's sql.DBStats."""

from __future__ import annotations

import asyncio

from lfsd.db.metadata import Metadata


async def test_pool_stats_count_use_and_waits(meta: Metadata) -> None:
    db = meta.db
    stats = db.pool_stats()
    assert stats.max_open >= 1 and stats.in_use == 0
    assert stats.open == stats.in_use + stats.idle

    release = asyncio.Event()
    all_in = asyncio.Event()
    entered = 0

    async def hold() -> None:
        nonlocal entered
        async with db.transaction():
            entered += 1
            if entered == stats.max_open:
                all_in.set()
            await release.wait()

    holders = [asyncio.ensure_future(hold()) for _ in range(stats.max_open)]
    await asyncio.wait_for(all_in.wait(), 10)
    assert db.pool_stats().in_use == stats.max_open
    assert db.pool_stats().open == stats.max_open

    waiter = asyncio.ensure_future(meta.users.count())
    await asyncio.sleep(0.2)
    assert not waiter.done()  # every connection is taken: it waits
    release.set()
    await asyncio.gather(*holders)
    assert await waiter >= 0
    after = db.pool_stats()
    assert after.waits == stats.waits + 1
    assert after.wait_seconds >= stats.wait_seconds + 0.15
    assert after.in_use == 0
