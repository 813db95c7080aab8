"""Usage counters move with every link and unlink, in the same transaction, exact under concurrency (every database)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lfsd.config import Settings
from lfsd.core.audit import Actor
from lfsd.core.errors import Forbidden, InsufficientStorage, NotFound
from lfsd.core.inventory import remove_objects
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.core.usage import UsageDay, UsageService
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.metadata import Metadata
from lfsd.db.objects import SqlObjectIndex
from lfsd.db.tables import objects, repo_objects
from lfsd.db.usage import SqlUsageStore, UsageCounters
from lfsd.resources import open_metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


async def _counts(meta: Metadata, path: str) -> tuple[int, int]:
    usage = await meta.usage.repo_usage(RepoPath.parse(path))
    assert usage is not None
    return usage.objects, usage.bytes


async def _scanned(meta: Metadata, repo_id: int) -> tuple[int, int]:
    """What a scan of the index says: the counters must always agree with it."""
    query = (
        select(func.count(), func.coalesce(func.sum(objects.c.size), 0))
        .select_from(repo_objects)
        .join(objects, objects.c.oid == repo_objects.c.oid)
        .where(repo_objects.c.repo_id == repo_id)
    )
    async with meta.db.transaction() as conn:
        count, size = (await conn.execute(query)).one()
    return int(count), int(size)


async def test_links_count_once_per_repository_and_owner(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    tools = await meta.repos.create(RepoPath.parse("acme/tools"), is_public=False)
    await meta.objects.link(game.id, {_oid(1): 100, _oid(2): 20})
    await meta.objects.link(game.id, {_oid(1): 100, _oid(3): 3})  # oid 1 again: not counted twice
    assert await _counts(meta, "acme/game") == (3, 123)
    await meta.objects.link(tools.id, {_oid(1): 100})  # deduplicated in the store, counted in each repository
    assert await _counts(meta, "acme/tools") == (1, 100)
    owner = await meta.usage.owner_usage("acme")
    assert (owner.objects, owner.bytes) == (4, 223)
    assert await meta.usage.totals() == (4, 223)
    game_usage = await meta.usage.repo_usage(RepoPath.parse("acme/game"))
    assert game_usage is not None and game_usage.last_push is not None
    listed = {info.repo.path: (info.objects, info.bytes) for info in await meta.repos.list_repos()}
    assert listed == {"acme/game": (3, 123), "acme/tools": (1, 100)}


async def test_remove_objects_unlink_everywhere_and_delete_take_counts_away(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    tools = await meta.repos.create(RepoPath.parse("acme/tools"), is_public=False)
    await meta.objects.link(game.id, {_oid(1): 100, _oid(2): 20, _oid(3): 3})
    await meta.objects.link(tools.id, {_oid(1): 100, _oid(2): 20})
    inventory = SqlIndexInventory(meta.db)

    removed = await remove_objects(inventory, RepoPath.parse("acme/game"), [_oid(3), _oid(9)])
    assert removed.unlinked == 1
    assert await _counts(meta, "acme/game") == (2, 120)

    assert await inventory.unlink([_oid(1)]) == 2  # fsck --repair: from every repository
    assert await _counts(meta, "acme/game") == (1, 20) == await _scanned(meta, game.id)
    assert await _counts(meta, "acme/tools") == (1, 20) == await _scanned(meta, tools.id)

    await meta.repos.delete(tools)
    owner = await meta.usage.owner_usage("acme")
    assert (owner.objects, owner.bytes) == (1, 20)


async def test_rename_to_another_owner_moves_the_counts(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await meta.objects.link(game.id, {_oid(1): 10})
    await meta.repos.rename(game, RepoPath.parse("other/game"))
    assert (await meta.usage.owner_usage("acme")).bytes == 0
    assert (await meta.usage.owner_usage("other")).bytes == 10
    assert await _counts(meta, "other/game") == (1, 10)


async def test_concurrent_links_and_unlinks_keep_counters_exact(meta: Metadata) -> None:
    """Several writers (each its own group commit, as separate processes would be) link overlapping objects into
    the same repositories while others are removed: the counters end equal to a scan of the index."""
    repos = [await meta.repos.create(RepoPath.parse(f"acme/r{n}"), is_public=False) for n in range(3)]
    writers = [SqlObjectIndex(meta.db, UsageCounters(meta.db.dialect)) for _ in range(4)]
    inventory = SqlIndexInventory(meta.db)

    async def writer(index: SqlObjectIndex, seed: int) -> None:
        for step in range(12):
            repo = repos[(seed + step) % len(repos)]
            await index.link(repo.id, {_oid(n): 1000 + n for n in range(step, step + 5)})

    async def remover() -> None:
        for step in range(6):
            await inventory.unlink_from(repos[step % len(repos)].path, [_oid(step), _oid(step + 3)])
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(index, seed) for seed, index in enumerate(writers)), remover())
    total = (0, 0)
    for repo in repos:
        scanned = await _scanned(meta, repo.id)
        assert await _counts(meta, repo.path) == scanned
        total = (total[0] + scanned[0], total[1] + scanned[1])
    owner = await meta.usage.owner_usage("acme")
    assert (owner.objects, owner.bytes) == total


async def test_writers_on_separate_connection_pools_keep_counters_exact(meta: Metadata, settings: Settings) -> None:
    """As two server processes would: each its own engine and pool, linking the same objects into one repository."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    other = await open_metadata(settings)
    try:

        async def writer(index: SqlObjectIndex, offset: int) -> None:
            for step in range(15):
                await index.link(repo.id, {_oid(n): 10 + n for n in range(offset + step, offset + step + 4)})

        await asyncio.gather(writer(meta.objects, 0), writer(other.objects, 2), writer(meta.objects, 5))
    finally:
        await other.close()
    assert await _counts(meta, "acme/game") == await _scanned(meta, repo.id) == (23, sum(10 + n for n in range(23)))


async def test_repository_quota_refuses_the_link_and_counts_nothing(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    other = await meta.repos.create(RepoPath.parse("acme/other"), is_public=False)
    assert await meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 150)
    await meta.objects.link(game.id, {_oid(1): 100})
    results = await asyncio.gather(
        meta.objects.link(game.id, {_oid(2): 60}),  # 160 > 150
        meta.objects.link(other.id, {_oid(2): 60}),  # the same group: not refused with it
        return_exceptions=True,
    )
    assert isinstance(results[0], InsufficientStorage)
    assert "150 bytes" in results[0].message and "100 of 150" in results[0].message
    assert results[1] is None
    assert await _counts(meta, "acme/game") == (1, 100) == await _scanned(meta, game.id)
    await meta.objects.link(game.id, {_oid(1): 100, _oid(3): 50})  # exactly at the quota: allowed
    assert await _counts(meta, "acme/game") == (2, 150)
    with pytest.raises(InsufficientStorage):
        await meta.usage.check_upload(game.id, 1)
    await meta.usage.set_repo_quota(RepoPath.parse("acme/game"), None)
    await meta.usage.check_upload(game.id, 10**12)


async def test_owner_and_default_quotas(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    tools = await meta.repos.create(RepoPath.parse("acme/tools"), is_public=False)
    await meta.usage.set_owner_quota("acme", 100)
    await meta.objects.link(game.id, {_oid(1): 70})
    with pytest.raises(InsufficientStorage, match="owner acme"):
        await meta.objects.link(tools.id, {_oid(2): 40})
    with pytest.raises(InsufficientStorage, match="owner acme"):
        await meta.usage.check_upload(tools.id, 40)
    assert await _counts(meta, "acme/tools") == (0, 0)

    limited = SqlObjectIndex(meta.db, UsageCounters(meta.db.dialect, default_quota=50))
    store = SqlUsageStore(meta.db, default_quota=50)
    lone = await meta.repos.create(RepoPath.parse("solo/lone"), is_public=False)
    with pytest.raises(InsufficientStorage, match="repository solo/lone"):
        await limited.link(lone.id, {_oid(3): 51})
    with pytest.raises(InsufficientStorage):
        await store.check_upload(lone.id, 51)
    await limited.link(lone.id, {_oid(3): 50})
    await store.set_repo_quota(RepoPath.parse("solo/lone"), 1000)  # its own quota overrides the default
    await limited.link(lone.id, {_oid(4): 500})
    usage = await store.repo_usage(RepoPath.parse("solo/lone"))
    assert usage is not None and (usage.bytes, usage.quota_bytes, usage.own_quota) == (550, 1000, True)


async def test_daily_history_for_the_chart(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await meta.objects.link(game.id, {_oid(1): 100, _oid(2): 20})
    await SqlIndexInventory(meta.db).unlink_from(game.path, [_oid(2)])
    service = UsageService(meta.usage, meta.audit, lambda: datetime.now(UTC))
    history = await service.usage_history(game.path, 3)
    today = datetime.now(UTC).date()
    assert history == [
        UsageDay(today - timedelta(days=2), 0, 0),
        UsageDay(today - timedelta(days=1), 0, 0),
        UsageDay(today, 1, 100),
    ]
    later = UsageService(meta.usage, meta.audit, lambda: datetime.now(UTC) + timedelta(days=2))
    assert [day.bytes for day in await later.usage_history(game.path, 4)] == [0, 100, 100, 100]
    with pytest.raises(NotFound):
        await service.usage_history(RepoPath.parse("acme/none"), 3)


async def test_quota_changes_are_for_admins_and_audited(meta: Metadata) -> None:
    await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    service = UsageService(meta.usage, meta.audit, lambda: datetime.now(UTC))
    admin = Actor.cli("root")
    await service.set_quota(admin, RepoPath.parse("acme/game"), 10)
    await service.set_quota(admin, "acme", 20)
    with pytest.raises(Forbidden):
        await service.set_quota(Actor(name="bob", user_id=7, is_admin=False, address="local"), "acme", None)
    with pytest.raises(NotFound):
        await service.set_quota(admin, RepoPath.parse("acme/none"), 10)
    assert (await service.usage(RepoPath.parse("acme/game"))).quota_bytes == 10
    assert (await service.usage("acme")).quota_bytes == 20


async def test_racing_links_cannot_pass_an_owner_quota_together(meta: Metadata, settings: Settings) -> None:
    """Two uploads that each fit the owner's quota alone, linked at once from two pools: exactly one wins."""
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    tools = await meta.repos.create(RepoPath.parse("acme/tools"), is_public=False)
    await meta.usage.set_owner_quota("acme", 100)
    other = await open_metadata(settings)
    try:
        results = await asyncio.gather(
            meta.objects.link(game.id, {_oid(1): 60}),
            other.objects.link(tools.id, {_oid(2): 60}),
            return_exceptions=True,
        )
    finally:
        await other.close()
    assert sorted(type(r).__name__ for r in results) == ["InsufficientStorage", "NoneType"]
    owner = await meta.usage.owner_usage("acme")
    assert (owner.objects, owner.bytes) == (1, 60)
    assert (await _scanned(meta, game.id))[1] + (await _scanned(meta, tools.id))[1] == 60


async def test_relink_after_unreachable_restores_the_counts(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await meta.objects.link(game.id, {_oid(1): 100, _oid(2): 20})
    inventory = SqlIndexInventory(meta.db)
    await inventory.unlink_from(game.path, [_oid(1), _oid(2)])
    assert await _counts(meta, "acme/game") == (0, 0)
    assert await inventory.relink(game.path, [_oid(1), _oid(2), _oid(9)]) == 2  # oid 9 was never indexed
    assert await inventory.relink(game.path, [_oid(1)]) == 0
    assert await _counts(meta, "acme/game") == (2, 120) == await _scanned(meta, game.id)


async def test_unlink_everywhere_also_takes_a_link_made_while_it_runs(meta: Metadata, settings: Settings) -> None:
    """``lfsd fsck --repair`` unlinks a damaged object from every repository, round after round until none holds
    it. Another process links it after the repair's first read: that link either waits for the repair and comes
    after it, or commits first and is found by the next round. On MariaDB a plain read would still show the first
    round's snapshot (REPEATABLE READ), and the repair would report the object unlinked everywhere while a
    repository it never saw kept it."""
    first = await meta.repos.create(RepoPath.parse("acme/first"), is_public=False)
    late = await meta.repos.create(RepoPath.parse("acme/late"), is_public=False)
    damaged = _oid(7)
    await meta.objects.link(first.id, {damaged: 10})
    inventory = SqlIndexInventory(meta.db)
    lock = inventory._usage.lock

    async def link() -> None:
        other = await open_metadata(settings)
        try:
            await other.objects.link(late.id, {damaged: 10})
        finally:
            await other.close()

    linking = threading.Thread(target=asyncio.run, args=(link(),))
    committed_meanwhile: list[bool] = []

    def lock_after_a_late_link(conn: Any, repo_ids: Any) -> Any:
        if not committed_meanwhile:
            # Between the repair's first read and its first lock; the event loop waits here, as another process
            # would not, so the other link is given two seconds (it waits for the repair's locks, or commits).
            linking.start()
            linking.join(2)
            committed_meanwhile.append(not linking.is_alive())
        return lock(conn, repo_ids)

    inventory._usage.lock = lock_after_a_late_link  # type: ignore[method-assign]
    removed = await inventory.unlink([damaged])
    linking.join(60)
    assert not linking.is_alive()
    assert await meta.objects.held_sizes(first.id, [damaged]) == {}
    held_late = await meta.objects.held_sizes(late.id, [damaged])
    if committed_meanwhile == [True]:  # committed before the repair's next round, which must have found it
        assert (removed, held_late) == (2, {})
    else:  # it waited for the repair's locks: one came after the other (a deadlock victim runs again after)
        assert (removed, held_late) in ((2, {}), (1, {damaged: 10}))
    assert await _counts(meta, "acme/late") == await _scanned(meta, late.id) == (len(held_late), 10 * len(held_late))
