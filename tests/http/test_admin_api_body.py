"""Admin API bodies are read like every other JSON body: a stalled one ends in 408, not a connection held for ever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfsd.config import Settings
from tests.conftest import AiohttpClient, open_world
from tests.http.admin_api_support import bearer
from tests.support import World

BODY_TIMEOUT = 0.5


@pytest.fixture
async def stall_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path / "data", fsync=False, body_timeout=BODY_TIMEOUT)
    world = await open_world(settings, aiohttp_client)
    yield world
    await world.meta.close()


@pytest.mark.parametrize("request_line", ["POST /api/v1/users", "PATCH /api/v1/repos/acme/game"])
async def test_a_stalled_admin_api_body_gets_408(stall_world: World, request_line: str) -> None:
    world = stall_world
    auth = (await bearer(world.meta, "root"))["Authorization"]
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    head = (
        f"{request_line} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"name": "')  # 10 of the 100 bytes, then nothing
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = next(int(line[15:]) for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        body = await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"request_id"' in body and b"X-Request-Id" in answer, (answer, body)
