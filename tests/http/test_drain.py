"""What clients see from a draining server (the sequence itself runs against real processes in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from lfsd.config import Settings
from lfsd.http.keys import HEALTH
from lfsd.http.state import Health
from tests.conftest import AiohttpClient, open_world
from tests.support import World, lfs_error


@pytest.fixture
async def sqlite_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    world = await open_world(Settings(data_dir=tmp_path / "data", fsync=False), aiohttp_client)
    yield world
    await world.meta.close()


def _health(world: World) -> Health:
    app = world.client.app
    assert isinstance(app, web.Application)
    return app[HEALTH]


async def test_during_the_delay_requests_are_served_and_close_their_connection(sqlite_world: World) -> None:
    world = sqlite_world
    health = _health(world)
    response = await world.client.get("/acme/game.git/info/lfs/locks", headers=world.auth("root"))
    assert response.status == 200
    assert response.headers.get("Connection", "").lower() != "close"

    health.draining = True
    response = await world.client.get("/readyz")
    assert response.status == 503
    assert response.headers["Connection"].lower() == "close"
    response = await world.client.get("/acme/game.git/info/lfs/locks", headers=world.auth("root"))
    assert response.status == 200
    assert response.headers["Connection"].lower() == "close"
    # Errors too, whichever layer renders them.
    response = await world.client.get("/acme/game.git/info/lfs/locks")
    await lfs_error(response, 401)
    assert response.headers["Connection"].lower() == "close"
    response = await world.client.get("/no/such/route")
    assert response.status == 404
    assert response.headers["Connection"].lower() == "close"


async def test_after_the_delay_a_request_on_an_old_connection_gets_503_and_retry_after(sqlite_world: World) -> None:
    world = sqlite_world
    health = _health(world)
    health.draining = health.closed = True  # the state the drain leaves once the listener has stopped
    response = await world.client.get("/acme/game.git/info/lfs/locks", headers=world.auth("root"))
    await lfs_error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Connection"].lower() == "close"
    assert health.active == 0
