"""Quotas over HTTP: a batch past the quota answers 507 before any byte is sent; a PUT that races past the quota
(two batches that each fit alone) is refused the same way when it would be linked; dedup links count too."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from lfsd.config import Settings
from lfsd.core.gc import Collector, GcOptions
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.resources import open_store
from tests.conftest import AiohttpClient, open_world
from tests.support import Blob, World, blob, lfs_error


async def test_batch_past_the_quota_is_507_with_quota_and_usage(world: World) -> None:
    await world.repo("acme/game")
    root = world.auth("root")
    await world.meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 1000)
    await world.push("acme/game", [blob(600, b"a")], root)
    response = await world.batch("acme/game", "upload", [blob(500, b"b").spec()], root)
    body = await lfs_error(response, 507)
    assert "repository acme/game is over its storage quota" in body["message"]
    assert "600 of 1000 bytes" in body["message"] and "(500 bytes) more" in body["message"]
    # Downloads and uploads of what it already holds are not refused.
    await world.batch_ok("acme/game", "download", [blob(600, b"a")], root)
    await world.batch_ok("acme/game", "upload", [blob(600, b"a")], root)


async def _race_past_the_quota(world: World) -> tuple[Blob, Blob]:
    """Two batches that each fit the quota alone, then both PUTs: the second is refused when it would be linked."""
    await world.repo("acme/game")
    root = world.auth("root")
    await world.meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 1000)
    first, second = blob(600, b"1"), blob(600, b"2")
    (one,) = await world.batch_ok("acme/game", "upload", [first], root)  # each fits alone
    (two,) = await world.batch_ok("acme/game", "upload", [second], root)
    ok = await world.client.session.put(
        one["actions"]["upload"]["href"], data=first.data, headers=one["actions"]["upload"]["header"]
    )
    assert ok.status == 200, await ok.text()
    late = await world.client.session.put(
        two["actions"]["upload"]["href"], data=second.data, headers=two["actions"]["upload"]["header"]
    )
    body = await lfs_error(late, 507)
    assert "600 of 1000 bytes" in body["message"]
    return first, second


async def test_a_put_racing_past_the_quota_is_refused_at_link_time(world: World) -> None:
    await _race_past_the_quota(world)
    usage = await world.meta.usage.repo_usage(RepoPath.parse("acme/game"))
    assert usage is not None and (usage.objects, usage.bytes) == (1, 600)


async def test_the_refused_bytes_are_left_to_the_garbage_collector(world: World, settings: Settings) -> None:
    """The refused PUT's bytes are already in the store: recorded as held by no repository, the collector's first
    run marks them and a run one grace period later removes them. Without a row nothing would ever remove them."""
    first, second = await _race_past_the_quota(world)
    kept, refused = Oid.parse(first.oid), Oid.parse(second.oid)
    async with AsyncExitStack() as resources:
        store = (await open_store(settings, resources)).store
        assert await store.present([kept, refused]) == {kept, refused}
        grace = GcOptions(grace=timedelta(seconds=60))
        await Collector(SqlGcIndex(world.meta.db), store, utcnow, "test-gc").run(grace)  # marks it unreferenced
        later = Collector(SqlGcIndex(world.meta.db), store, lambda: utcnow() + timedelta(seconds=61), "test-gc")
        report = await later.run(grace)  # one grace period on
        assert (report.objects, report.bytes) == (1, 600)
        assert await store.present([kept, refused]) == {kept}


async def test_dedup_links_count_against_each_repository_and_the_owner(world: World) -> None:
    await world.repo("acme/game")
    await world.repo("acme/tools")
    root = world.auth("root")
    shared = blob(700, b"s")
    await world.push("acme/game", [shared], root)
    await world.meta.usage.set_owner_quota("acme", 1000)
    response = await world.batch("acme/tools", "upload", [shared.spec()], root)  # would be a link, no transfer
    body = await lfs_error(response, 507)
    assert "owner acme is over its storage quota" in body["message"]
    await world.meta.usage.set_owner_quota("acme", 1400)
    (linked,) = await world.batch_ok("acme/tools", "upload", [shared], root)
    assert "actions" not in linked
    owner = await world.meta.usage.owner_usage("acme")
    assert (owner.objects, owner.bytes) == (2, 1400)


async def test_the_server_default_quota(
    tmp_path: Path, database_url: str | None, aiohttp_client: AiohttpClient
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        fsync=False,
        quota_default_bytes=100,
        buffer_size=64 * 1024,
    )
    world = await open_world(settings, aiohttp_client)
    try:
        root = world.auth("root")
        body = await lfs_error(await world.batch("acme/game", "upload", [blob(101).spec()], root), 507)
        assert "0 of 100 bytes" in body["message"]
        await world.push("acme/game", [blob(100)], root)
        await world.meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 1000)  # its own quota wins
        await world.push("acme/game", [blob(300, b"x")], root)
    finally:
        await world.meta.close()


async def test_prometheus_has_totals_only(world: World) -> None:
    await world.repo("acme/game")
    await world.repo("acme/tools")
    root = world.auth("root")
    shared = blob(700, b"s")
    await world.push("acme/game", [shared, blob(5, b"t")], root)
    await world.push("acme/tools", [shared], root)
    text = await (await world.client.get("/metrics")).text()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("lfsd_stored_"))
    assert samples == {"lfsd_stored_bytes": "1405.0", "lfsd_stored_objects": "3.0"}  # no per-repository label
