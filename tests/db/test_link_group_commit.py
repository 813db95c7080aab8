"""Links asked for together are committed together (group commit), and each caller still learns its own outcome."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Collection
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lfsd.config import Settings
from lfsd.core.errors import NotFound, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
from lfsd.db.objects import GROUP_LINKS
from lfsd.db.tables import objects
from lfsd.resources import open_metadata


async def _transactions(meta: Metadata, trips: list[str], links: Awaitable[object]) -> int:
    """The write transactions ``links`` took: commits seen by SQLAlchemy's events, and on SQLite, whose link bypasses
    them, trips to the driver's thread."""
    commits: list[int] = []

    def counted(*_args: Any) -> None:
        commits.append(1)

    event.listen(Engine, "commit", counted)
    trips.clear()
    try:
        await links
    finally:
        event.remove(Engine, "commit", counted)
    return trips.count("_write_transaction") if meta.db.dialect == "sqlite" else len(commits)


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


async def test_uploads_ending_together_share_one_transaction(meta: Metadata, trips: list[str]) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    transactions = await _transactions(
        meta, trips, asyncio.gather(*(meta.objects.link(repo.id, {_oid(n): 100 + n}) for n in range(20)))
    )
    assert 1 <= transactions <= 2  # the first may start alone; the other 19 wait for it and go together
    held = await meta.objects.held_sizes(repo.id, [_oid(n) for n in range(20)])
    assert held == {_oid(n): 100 + n for n in range(20)}


async def test_a_deleted_repository_fails_only_its_own_links(meta: Metadata) -> None:
    kept = await meta.repos.create(RepoPath.parse("acme/kept"), is_public=False)
    gone_id = kept.id + 1000  # no such repository: its foreign key fails, as for one deleted meanwhile
    results = await asyncio.gather(
        meta.objects.link(kept.id, {_oid(1): 1}),
        meta.objects.link(gone_id, {_oid(2): 2}),
        meta.objects.link(kept.id, {_oid(3): 3}),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotFound)
    assert await meta.objects.held_sizes(kept.id, [_oid(1), _oid(2), _oid(3)]) == {_oid(1): 1, _oid(3): 3}


async def test_a_caller_that_goes_away_does_not_stop_the_others(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    first = asyncio.ensure_future(meta.objects.link(repo.id, {_oid(1): 1}))
    second = asyncio.ensure_future(meta.objects.link(repo.id, {_oid(2): 2}))
    await asyncio.sleep(0)
    first.cancel()
    await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert _oid(2) in await meta.objects.held_sizes(repo.id, [_oid(2)])


async def test_a_group_takes_at_most_group_links_links(meta: Metadata, trips: list[str]) -> None:
    """Links beyond ``GROUP_LINKS`` waiting together go into the next transaction (counted as commits through
    SQLAlchemy's events, and on SQLite, whose link bypasses them, as trips to the driver's thread)."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    count = GROUP_LINKS + 8
    # Every link is queued before the writer first runs: without the bound they would all share one commit.
    transactions = await _transactions(
        meta, trips, asyncio.gather(*(meta.objects.link(repo.id, {_oid(n): 100 + n}) for n in range(count)))
    )
    assert transactions == 2
    held = await meta.objects.held_sizes(repo.id, [_oid(n) for n in range(count)])
    assert held == {_oid(n): 100 + n for n in range(count)}


async def test_each_caller_returns_once_its_rows_are_committed(meta: Metadata, settings: Settings) -> None:
    """Durable when acknowledged: when a caller's link returns, another connection already sees its rows."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    other = await open_metadata(settings)  # its own engine and connection on the same database
    unseen: list[Oid] = []

    async def link_then_look(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 4))  # several groups, each joined while the one before commits
        await meta.objects.link(repo.id, {_oid(n): 100 + n})
        if await other.objects.held_sizes(repo.id, [_oid(n)]) != {_oid(n): 100 + n}:
            unseen.append(_oid(n))

    try:
        await asyncio.gather(*(link_then_look(n) for n in range(24)))
    finally:
        await other.close()
    assert unseen == []


async def test_a_failure_of_the_whole_transaction_reaches_every_member(meta: Metadata) -> None:
    """A group's store check failing fails its transaction: every member learns it, and none of its rows stay."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    asked: list[set[Oid]] = []

    async def broken(oids: Collection[Oid]) -> set[Oid]:
        asked.append(set(oids))
        raise ServiceUnavailable("the store is down")

    meta.objects.check_bodies_with(broken)
    results = await asyncio.gather(
        *(meta.objects.link(repo.id, {_oid(n): 100 + n}) for n in range(5)), return_exceptions=True
    )
    assert asked == [{_oid(n) for n in range(5)}]  # one transaction for the five
    assert all(isinstance(result, ServiceUnavailable) for result in results)
    async with meta.db.transaction() as conn:
        assert (await conn.execute(objects.select())).all() == []
    assert await meta.objects.held_sizes(repo.id, [_oid(n) for n in range(5)]) == {}
