"""The garbage collector against the real index (SQLite, MariaDB, PostgreSQL) and a real local store.

The races are made deterministic by a store whose ``delete`` stops half-way (the collector then holds its claim):
what a concurrent upload, dedup link or download does in that moment is what the guarantees are about. A randomized
run mixes all of them with collections and checks the one invariant after every step.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from lfsd.core.auth import Repo
from lfsd.core.errors import ServiceUnavailable
from lfsd.core.gc import Collector, GcBusy, GcOptions, GcReport
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.metadata import Metadata
from lfsd.db.tables import objects, repo_objects
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore

GRACE = timedelta(seconds=60)


class Body:
    def __init__(self, data: bytes) -> None:
        self._chunks = [data]

    async def read(self) -> bytes:
        return self._chunks.pop() if self._chunks else b""


def data_of(n: int) -> bytes:
    return f"object {n} ".encode() * (n % 7 + 1)


def oid_of(data: bytes) -> Oid:
    return Oid.parse(hashlib.sha256(data).hexdigest())


@dataclass
class PausingStore:
    """The local store; ``delete`` can be made to wait (the collector then holds its claim) or to crash after."""

    inner: LocalStore
    pause: asyncio.Event | None = None
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    crash_after_delete: bool = False

    async def delete(self, oids: Collection[Oid]) -> None:
        if self.pause is not None:
            self.paused.set()
            await self.pause.wait()
        await self.inner.delete(oids)
        if self.crash_after_delete:
            raise RuntimeError("killed between the bytes and the commit")


@dataclass
class Site:
    meta: Metadata
    store: LocalStore
    gc_store: PausingStore

    def collector(self, holder: str = "gc-test") -> Collector:
        return Collector(SqlGcIndex(self.meta.db), self.gc_store, utcnow, holder)

    async def gc(self, grace: timedelta = GRACE, *, dry_run: bool = False) -> GcReport:
        return await self.collector().run(GcOptions(grace=grace, dry_run=dry_run))

    async def upload(self, repo_id: int, n: int) -> Oid:
        """What ``LfsService.upload`` does: the bytes, then the link."""
        data = data_of(n)
        oid = oid_of(data)
        await self.store.put(oid, len(data), Body(data))
        await self.meta.objects.link(repo_id, {oid: len(data)})
        return oid

    async def age(self, seconds: float) -> None:
        """Move every GC time stamp ``seconds`` into the past (as if that much time had gone by)."""
        async with self.meta.db.transaction() as conn:
            rows = (await conn.execute(select(objects.c.oid, objects.c.unlinked_at, objects.c.touched_at))).all()
            for row in rows:
                values: dict[str, datetime] = {}
                if row.unlinked_at is not None:
                    values["unlinked_at"] = row.unlinked_at - timedelta(seconds=seconds)
                if row.touched_at is not None:
                    values["touched_at"] = row.touched_at - timedelta(seconds=seconds)
                if values:
                    await conn.execute(update(objects).where(objects.c.oid == row.oid).values(**values))

    async def rows(self) -> set[Oid]:
        async with self.meta.db.transaction() as conn:
            return {Oid(oid) for oid in (await conn.execute(select(objects.c.oid))).scalars()}

    async def check_invariant(self) -> None:
        """Every object some repository holds has its bytes."""
        async with self.meta.db.transaction() as conn:
            linked = {Oid(oid) for oid in (await conn.execute(select(repo_objects.c.oid).distinct())).scalars()}
        missing = linked - await self.store.present(linked)
        assert not missing, f"linked objects without bytes: {sorted(missing)}"


@pytest.fixture
async def site(meta: Metadata, tmp_path: Path) -> Site:
    store = LocalStore(tmp_path / "store", BufferPool(64 * 1024, 4 * 1024 * 1024), fsync=False, direct_io=False)
    store.prepare()
    meta.objects.check_bodies_with(store.present)
    return Site(meta, store, PausingStore(store))


async def _repo(site: Site, path: str) -> int:
    return (await site.meta.repos.create(RepoPath.parse(path), is_public=False)).id


async def test_a_deleted_repositorys_own_objects_go_shared_ones_stay(site: Site) -> None:
    doomed, kept = await _repo(site, "acme/doomed"), await _repo(site, "acme/kept")
    own = await site.upload(doomed, 1)
    shared = await site.upload(doomed, 2)
    await site.upload(kept, 2)
    other = await site.upload(kept, 3)
    repo = await site.meta.repos.find(RepoPath.parse("acme/doomed"))
    assert repo is not None
    await site.meta.repos.delete(repo)

    first = await site.gc()  # sees `own` unreferenced: its grace period starts now
    assert (first.objects, first.marked) == (0, 1)
    await site.age(GRACE.total_seconds() + 1)

    dry = await site.gc(dry_run=True)
    assert (dry.objects, dry.bytes) == (1, len(data_of(1)))
    assert own in await site.rows() and await site.store.present([own]) == {own}  # a dry run changes nothing

    real = await site.gc()
    assert (real.objects, real.bytes) == (1, len(data_of(1)))
    assert own not in await site.rows()
    assert await site.store.present([own, shared, other]) == {shared, other}
    assert (await site.gc()).objects == 0
    await site.check_invariant()


async def test_the_grace_period_is_kept(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, 1)
    await SqlIndexInventory(site.meta.db).unlink_from(RepoPath.parse("acme/game"), [oid])
    await site.gc()
    await site.age(GRACE.total_seconds() - 5)
    assert (await site.gc()).objects == 0
    await site.age(10)
    assert (await site.gc()).objects == 1
    assert await site.store.present([oid]) == set()


async def test_an_upload_batch_naming_the_oid_restarts_the_grace_period(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, 1)
    await SqlIndexInventory(site.meta.db).unlink([oid])
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    await site.meta.objects.touch([oid])  # a batch handed out an upload link for it just now
    assert (await site.gc()).objects == 0
    assert await site.store.present([oid]) == {oid}
    await site.age(GRACE.total_seconds() + 1)
    assert (await site.gc()).objects == 1


async def test_a_link_again_takes_the_object_out_of_the_collectors_reach(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, 1)
    await SqlIndexInventory(site.meta.db).unlink([oid])
    await site.gc()
    await site.upload(repo, 1)
    await site.age(GRACE.total_seconds() + 1)
    assert (await site.gc()).objects == 0
    assert await site.meta.objects.held_sizes(repo, [oid]) == {oid: len(data_of(1))}


async def _claimed(site: Site, n: int) -> tuple[int, Oid, asyncio.Task[GcReport], asyncio.Event]:
    """An unreferenced object past its grace period, and a collector stopped inside its claim on it."""
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, n)
    await SqlIndexInventory(site.meta.db).unlink([oid])
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    go = asyncio.Event()
    site.gc_store.pause = go
    running = asyncio.create_task(site.gc())
    await site.gc_store.paused.wait()
    return repo, oid, running, go


async def test_an_upload_landing_inside_the_claim_never_links_missing_bytes(site: Site) -> None:
    repo, oid, running, go = await _claimed(site, 1)
    data = data_of(1)
    await site.store.put(oid, len(data), Body(data))  # the PUT's bytes land while the collector holds its claim
    linking = asyncio.create_task(site.meta.objects.link(repo, {oid: len(data)}))
    await asyncio.sleep(0.2)  # the link is now waiting for the claim's rows (or the database's one writer)
    assert not linking.done()
    go.set()
    assert (await running).objects == 1
    with pytest.raises(ServiceUnavailable, match="collected while it was uploaded"):
        await linking
    assert await site.meta.objects.held_sizes(repo, [oid]) == {}
    await site.check_invariant()
    site.gc_store.pause = None
    assert await site.upload(repo, 1) == oid  # the client's retry
    assert await site.store.present([oid]) == {oid}
    await site.check_invariant()


async def test_an_upload_after_the_collection_wins(site: Site) -> None:
    repo, oid, running, go = await _claimed(site, 2)
    go.set()
    await running
    site.gc_store.pause = None
    await site.upload(repo, 2)
    assert await site.meta.objects.held_sizes(repo, [oid]) == {oid: len(data_of(2))}
    await site.check_invariant()


async def test_a_link_committed_before_the_claim_wins(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, 3)
    await SqlIndexInventory(site.meta.db).unlink([oid])
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    await site.upload(repo, 3)  # between the collector's page and its claim
    index = SqlGcIndex(site.meta.db)
    claimed = await index.collect("gc-test", [oid], utcnow() - GRACE, site.gc_store.delete)
    assert claimed == []
    assert await site.store.present([oid]) == {oid}
    await site.check_invariant()


async def test_a_crash_between_bytes_and_commit_leaves_what_the_next_run_finishes(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oid = await site.upload(repo, 4)
    await SqlIndexInventory(site.meta.db).unlink([oid])
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    site.gc_store.crash_after_delete = True
    with pytest.raises(RuntimeError):
        await site.gc()
    site.gc_store.crash_after_delete = False
    assert oid in await site.rows() and await site.store.present([oid]) == set()  # held by nobody: harmless
    with pytest.raises(ServiceUnavailable):
        await site.meta.objects.link(repo, {oid: len(data_of(4))})  # a link checks the bytes of such a row
    await site.check_invariant()
    assert (await site.gc()).objects == 1
    assert oid not in await site.rows()


async def test_a_dedup_link_of_a_held_object_is_never_collected(site: Site) -> None:
    first, second = await _repo(site, "acme/one"), await _repo(site, "acme/two")
    oid = await site.upload(first, 5)
    await site.meta.objects.link(second, {oid: len(data_of(5))})  # what a batch does for a LINKED object
    await site.meta.repos.delete(await _found(site, "acme/one"))
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    assert (await site.gc()).objects == 0
    assert (await site.store.get(oid)) is not None


async def _found(site: Site, path: str) -> Repo:
    repo = await site.meta.repos.find(RepoPath.parse(path))
    assert repo is not None
    return repo


async def test_one_collector_at_a_time(site: Site) -> None:
    index = SqlGcIndex(site.meta.db)
    now = utcnow()
    assert await index.acquire("gc-a", now, timedelta(seconds=60))
    assert not await index.acquire("gc-b", now, timedelta(seconds=60))
    with pytest.raises(GcBusy):
        await site.collector("gc-b").run(GcOptions(grace=GRACE))
    assert (await site.collector("gc-b").run(GcOptions(grace=GRACE, dry_run=True))).objects == 0  # needs no lease
    assert await index.acquire("gc-b", now + timedelta(seconds=61), timedelta(seconds=60))  # "gc-a" died
    await index.release("gc-b")
    assert await index.acquire("gc-a", now, timedelta(seconds=60))
    await index.release("gc-a")


async def test_collectors_racing_share_the_work(site: Site) -> None:
    repo = await _repo(site, "acme/game")
    oids = [await site.upload(repo, n) for n in range(30)]
    await SqlIndexInventory(site.meta.db).unlink(oids)
    await site.gc()
    await site.age(GRACE.total_seconds() + 1)
    index = SqlGcIndex(site.meta.db)
    cutoff = utcnow() - GRACE
    # Two collectors whose leases overlapped (one paused past its lease): each object is claimed by one of them.
    results = await asyncio.gather(
        index.collect("gc-a", oids, cutoff, site.gc_store.delete),
        index.collect("gc-b", list(reversed(oids)), cutoff, site.gc_store.delete),
    )
    assert sorted(g.oid for result in results for g in result) == sorted(oids)
    assert await site.rows() == set()


async def test_randomized_uploads_removals_downloads_and_collections(site: Site) -> None:
    rng = random.Random(14)
    pinned = await _repo(site, "acme/pinned")  # never loses an object: every download from it must work
    churn = [await _repo(site, f"acme/churn{i}") for i in range(3)]
    inventory = SqlIndexInventory(site.meta.db)
    pinned_oids = [await site.upload(pinned, n) for n in range(5)]
    failures = 0

    async def uploader(worker: int) -> None:
        nonlocal failures
        for _ in range(25):
            repo = rng.choice(churn)
            try:
                await site.upload(repo, rng.randrange(12))
            except ServiceUnavailable:
                failures += 1  # collected while uploading: the client retries; never a link without bytes
            await site.check_invariant()

    async def remover() -> None:
        for _ in range(25):
            path = RepoPath.parse(f"acme/churn{rng.randrange(3)}")
            await inventory.unlink_from(path, [oid_of(data_of(rng.randrange(12)))])
            await asyncio.sleep(0)

    async def downloader() -> None:
        for _ in range(50):
            oid = rng.choice(pinned_oids)
            assert await site.meta.objects.held_sizes(pinned, [oid])
            assert await site.store.get(oid) is not None
            await asyncio.sleep(0)

    async def collector() -> None:
        for _ in range(15):
            await site.collector(f"gc-{rng.randrange(1000)}").run(GcOptions(grace=timedelta(0)))
            await site.check_invariant()

    await asyncio.gather(uploader(0), uploader(1), remover(), downloader(), collector())
    await site.check_invariant()
    assert await site.store.present(pinned_oids) == set(pinned_oids)
    assert failures <= 50
