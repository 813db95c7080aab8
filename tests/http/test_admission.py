"""The per-user transfer cap is one atomic step: simultaneous transfers cannot all slip past it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, StoredObject
from tests.conftest import AiohttpClient, open_world
from tests.delegating_store import DelegatingStore
from tests.support import World, blob

CAP = 2


class SlowStore(DelegatingStore):
    """Every lookup takes a while, as on a busy disk or a remote store: admission must not await across it."""

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        await asyncio.sleep(0.3)
        await self.inner.put(oid, size, source)

    async def get(self, oid: Oid) -> StoredObject | None:
        await asyncio.sleep(0.3)
        return await self.inner.get(oid)


@pytest.fixture
async def slow_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    world = await _slow(tmp_path, aiohttp_client, queue_wait=0)
    yield world
    await world.meta.close()


async def _slow(tmp_path: Path, aiohttp_client: AiohttpClient, *, queue_wait: float) -> World:
    settings = Settings(
        data_dir=tmp_path / "data",
        fsync=False,
        buffer_size=64 * 1024,
        max_transfers_per_user=CAP,
        transfer_queue_wait=queue_wait,
    )
    return await open_world(settings, aiohttp_client, wrap_store=SlowStore)


async def _simultaneous_downloads(world: World, count: int) -> list[tuple[int, str | None]]:
    item = blob(10_000)
    await world.push("acme/game", [item], world.auth("root"))
    (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    action = obj["actions"]["download"]

    async def get() -> tuple[int, str | None]:
        response = await world.client.session.get(action["href"], headers=action["header"])
        await response.read()
        return response.status, response.headers.get("Retry-After")

    return await asyncio.gather(*(get() for _ in range(count)))


async def test_transfers_over_the_cap_wait_for_a_slot_instead_of_failing(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    """Issue 17: 64 concurrent transfers against a small cap ran the client out of retries on 429s."""
    world = await _slow(tmp_path, aiohttp_client, queue_wait=10)
    try:
        results = await _simultaneous_downloads(world, 8)
        assert [status for status, _ in results] == [200] * 8
    finally:
        await world.meta.close()


async def test_retry_after_reflects_the_queue(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    """Waiting briefly, then 429: the deeper the queue a retry would meet, the longer Retry-After says to wait."""
    world = await _slow(tmp_path, aiohttp_client, queue_wait=0.05)
    try:
        results = await _simultaneous_downloads(world, 12)
        assert sorted(status for status, _ in results) == [200] * CAP + [429] * (12 - CAP)
        waits = [int(after) for status, after in results if status == 429 and after is not None]
        assert len(waits) == 12 - CAP
        assert max(waits) >= 3 and min(waits) >= 1
    finally:
        await world.meta.close()


async def test_simultaneous_downloads_respect_the_cap(slow_world: World) -> None:
    world = slow_world
    item = blob(10_000)
    await world.push("acme/game", [item], world.auth("root"))
    (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    action = obj["actions"]["download"]

    async def get() -> int:
        response = await world.client.session.get(action["href"], headers=action["header"])
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(get() for _ in range(10)))
    assert sorted(statuses) == [200] * CAP + [429] * (10 - CAP)
    # The slots are free again afterwards.
    assert await get() == 200


async def test_simultaneous_uploads_respect_the_cap(slow_world: World) -> None:
    world = slow_world
    items = [blob(5000) for _ in range(10)]
    objs = await world.batch_ok("acme/game", "upload", items, world.auth("root"))

    async def put(obj: dict[str, object], data: bytes) -> int:
        action = obj["actions"]
        assert isinstance(action, dict)
        upload = action["upload"]
        response = await world.client.session.put(upload["href"], data=data, headers=upload["header"])
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(put(obj, item.data) for obj, item in zip(objs, items, strict=True)))
    assert sorted(statuses) == [200] * CAP + [429] * (10 - CAP)
