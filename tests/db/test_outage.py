"""A database that goes away or hangs gives 503 with Retry-After, never a hang or a 500, and lfsd recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from lfsd.config import Settings
from tests.conftest import AiohttpClient, migrated_url, open_world
from tests.databases import Server
from tests.db.proxy import FlakyProxy
from tests.support import World, blob, lfs_error


@pytest.fixture(params=["mariadb", "postgresql"])
async def outage_world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_databases: dict[str, tuple[Server, str]],
    aiohttp_client: AiohttpClient,
) -> AsyncIterator[tuple[World, FlakyProxy]]:
    url = make_url(migrated_url(request.param, migrated_databases))
    assert url.port is not None
    proxy = FlakyProxy(url.port)
    await proxy.start()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        database_timeout=2.0,
        database_connect_timeout=1.0,
        database_pool_timeout=1.0,
    )
    world = await open_world(settings, aiohttp_client)
    yield world, proxy
    await proxy.close()
    await world.meta.close()


async def _batch(world: World) -> Any:
    return await world.batch("acme/game", "download", [blob(1, b"x").spec()], world.auth("root"))


async def _recovers(world: World, proxy: FlakyProxy) -> None:
    await proxy.start()  # on the same port
    deadline = time.monotonic() + 15
    while True:
        response = await _batch(world)
        if response.status == 200:
            return
        assert response.status == 503, await response.text()
        assert time.monotonic() < deadline, "lfsd did not recover after the database came back"
        await asyncio.sleep(0.2)


async def test_database_down_gives_503_then_recovers(outage_world: tuple[World, FlakyProxy]) -> None:
    world, proxy = outage_world
    assert (await _batch(world)).status == 200
    await proxy.drop()
    started = time.monotonic()
    for _ in range(3):
        response = await _batch(world)
        body = await lfs_error(response, 503)
        assert response.headers["Retry-After"].isdigit()
        assert "database" in body["message"] and "Error" not in body["message"]
    assert time.monotonic() - started < 10, "requests hung instead of failing"
    await _recovers(world, proxy)


async def test_database_hang_gives_503_within_the_timeout_then_recovers(
    outage_world: tuple[World, FlakyProxy],
) -> None:
    world, proxy = outage_world
    assert (await _batch(world)).status == 200
    proxy.stall()
    started = time.monotonic()
    response = await _batch(world)
    await lfs_error(response, 503)
    assert response.headers["Retry-After"].isdigit()
    assert time.monotonic() - started < 8, "the timeout did not bound the request"
    await proxy.drop()
    await _recovers(world, proxy)
