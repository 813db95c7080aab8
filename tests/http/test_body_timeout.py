"""Every request body that stalls ends in 408, not in a connection held for ever (batch, locks, verify)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.http.media import LFS_JSON
from tests.conftest import AiohttpClient, open_world
from tests.support import World

BODY_TIMEOUT = 0.5
OID = "a" * 64


@pytest.fixture
async def stall_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path / "data", fsync=False, buffer_size=64 * 1024, body_timeout=BODY_TIMEOUT)
    world = await open_world(settings, aiohttp_client)
    yield world
    await world.meta.close()


@pytest.mark.parametrize(
    "path",
    [
        "/acme/game.git/info/lfs/objects/batch",
        "/acme/game.git/info/lfs/locks",
        "/acme/game.git/info/lfs/locks/verify",
        f"/acme/game.git/info/lfs/objects/{OID}/verify",
    ],
    ids=["batch", "lock", "locks-verify", "object-verify"],
)
async def test_a_stalled_json_body_gets_408(stall_world: World, path: str) -> None:
    world = stall_world
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    headers = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {world.auth('root')['Authorization']}\r\n"
        f"Accept: {LFS_JSON}\r\nContent-Type: {LFS_JSON}\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    writer.write(headers.encode() + b'{"operatio')  # 10 of the 100 bytes, then nothing
    await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_TIMEOUT + 5)
        length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        body = await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    assert time.monotonic() - started < BODY_TIMEOUT + 2
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert f"Content-Type: {LFS_JSON}".encode() in head, head
    assert b'"request_id"' in body, body
