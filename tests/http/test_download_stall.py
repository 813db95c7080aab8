"""A download whose client stops reading ends after the stall timeout: it frees its slot and cannot hold a drain."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lfsd.config import Settings, SettingsArgs
from lfsd.http.keys import INFLIGHT
from tests.conftest import AiohttpClient, open_world
from tests.s3server import S3Server
from tests.support import World, blob

BIG = 48 * 1024 * 1024  # more than the socket buffers of both ends hold


@pytest.fixture(params=["local", "s3"])
async def stalling_world(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_client: AiohttpClient
) -> AsyncIterator[World]:
    options: SettingsArgs = {
        "data_dir": tmp_path / "data",
        "fsync": False,
        "body_timeout": 1.0,
        "max_transfers_per_user": 1,
    }
    if request.param == "s3":
        s3_server: S3Server = request.getfixturevalue("s3_server")
        options.update(
            {
                "storage": f"s3://{s3_server.new_bucket()}/lfs",
                "s3_endpoint_url": s3_server.endpoint,
                "s3_path_style": True,
            }
        )
    world = await open_world(Settings(**options), aiohttp_client)
    yield world
    await world.meta.close()


async def test_a_client_that_stops_reading_is_cut_off(stalling_world: World) -> None:
    world = stalling_world
    item = blob(BIG, seed=b"stall")
    (up,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    upload = up["actions"]["upload"]
    response = await world.client.session.put(upload["href"], data=io.BytesIO(item.data), headers=upload["header"])
    assert response.status == 200, await response.text()
    (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    action = obj["actions"]["download"]
    url = urlsplit(action["href"])
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(
        f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: {action['header']['Authorization']}\r\n\r\n".encode()
    )
    await writer.drain()
    await reader.read(64 * 1024)  # the download has started; then this client reads nothing more
    inflight = world.client.app[INFLIGHT]
    deadline = time.monotonic() + 15
    while inflight.downloads:
        assert time.monotonic() < deadline, "the stalled download was never cut off"
        await asyncio.sleep(0.1)
    writer.close()
    # Its slot is free again (the cap here is one transfer per user).
    (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    again_action = obj["actions"]["download"]
    again = await world.client.session.get(again_action["href"], headers=again_action["header"])
    assert again.status == 200
    assert len(await again.read()) == BIG
