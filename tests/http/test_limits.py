"""Limits that keep slow or greedy clients from tying the server up, each answered with an LFS error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lfsd.config import Settings
from tests.conftest import AiohttpClient, open_world
from tests.support import World, blob, lfs_error


@pytest.fixture
async def strict_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=tmp_path / "data",
        fsync=False,
        buffer_size=64 * 1024,
        max_transfers_per_user=1,
        transfer_queue_wait=0,  # the cap answers at once here; waiting for a slot is tests/http/test_admission.py's
        body_timeout=0.5,
        max_url_length=512,
        max_header_bytes=2048,
    )
    world = await open_world(settings, aiohttp_client)
    yield world
    await world.meta.close()


async def _upload_action(world: World, size: int) -> tuple[dict[str, Any], bytes]:
    item = blob(size)
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    action: dict[str, Any] = obj["actions"]["upload"]
    return action, item.data


async def test_transfers_per_user_are_capped_with_429(strict_world: World) -> None:
    world = strict_world
    first, first_data = await _upload_action(world, 200_000)
    second, second_data = await _upload_action(world, 1000)
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield first_data[:1000]
        await release.wait()
        yield first_data[1000:]

    running = asyncio.ensure_future(world.client.session.put(first["href"], data=slow(), headers=first["header"]))
    await asyncio.sleep(0.2)
    response = await world.client.session.put(second["href"], data=second_data, headers=second["header"])
    await lfs_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    release.set()
    assert (await running).status == 200
    # The slot is free again.
    response = await world.client.session.put(second["href"], data=second_data, headers=second["header"])
    assert response.status == 200


async def test_stalled_upload_body_gets_408_and_leaves_nothing(strict_world: World) -> None:
    world = strict_world
    action, data = await _upload_action(world, 100_000)
    path = "/" + action["href"].split("/", 3)[3]
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    writer.write(
        (
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {action['header']['Authorization']}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data[:5000]
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    assert b" 408 " in status
    writer.close()
    assert list((Path(world.meta.db.engine.url.database or "").parent / "tmp").iterdir()) == []


async def test_long_paths_and_huge_headers_get_lfs_errors(strict_world: World) -> None:
    world = strict_world
    await lfs_error(await world.client.get("/" + "a/" * 400 + "info/lfs/locks"), 414)
    await lfs_error(await world.client.get("/acme/game.git/info/lfs/locks", headers={"X-Big": "x" * 3000}), 431)
