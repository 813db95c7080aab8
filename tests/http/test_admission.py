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
    settings = Settings(data_dir=tmp_path / "data", fsync=False, buffer_size=64 * 1024, max_transfers_per_user=CAP)
    world = await open_world(settings, aiohttp_client, wrap_store=SlowStore)
    yield world
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
