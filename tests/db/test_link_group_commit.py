"""Links asked for together are committed together (group commit), and each caller still learns its own outcome."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lfsd.core.errors import NotFound
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


async def test_uploads_ending_together_share_one_transaction(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    commits: list[int] = []

    def counted(*_args: Any) -> None:
        commits.append(1)

    event.listen(Engine, "commit", counted)
    try:
        await asyncio.gather(*(meta.objects.link(repo.id, {_oid(n): 100 + n}) for n in range(20)))
    finally:
        event.remove(Engine, "commit", counted)
    assert len(commits) <= 2  # the first may start alone; the other 19 wait for it and go together
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
