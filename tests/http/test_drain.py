"""What clients see from a draining server (the sequence itself runs against real processes in tests/e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from lfsd.config import Settings
from lfsd.http.keys import HEALTH
from lfsd.http.media import LFS_JSON
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
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    fresh_reader, fresh_writer = await asyncio.open_connection(world.client.host, world.client.port)
    try:
        assert (await _exchange(reader, writer)).startswith(b"HTTP/1.1 200 ")  # kept alive: now an old connection
        health.draining = health.closed = True  # the state the drain leaves once the listener has stopped
        head = await _exchange(reader, writer)
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"Retry-After: " in head and b"Connection: close" in head, head
        assert f"Content-Type: {LFS_JSON}".encode() in head, head
        # The first request on a connection accepted before the listener stopped is served: it was sent in good faith.
        head = await _exchange(fresh_reader, fresh_writer)
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head, head
    finally:
        writer.close()
        fresh_writer.close()
    assert health.active == 0


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One ``GET /healthz``; the response head (its small body is read and dropped)."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: lfsd\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return head
