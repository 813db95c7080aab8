from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lfsd.app import Metadata, build_app
from lfsd.config import Settings
from tests.support import World

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", listen="127.0.0.1:0", fsync=False, buffer_size=64 * 1024)


@pytest.fixture
async def meta(settings: Settings) -> AsyncIterator[Metadata]:
    opened = await Metadata.open(settings)
    yield opened
    await opened.close()


@pytest.fixture
async def world(meta: Metadata, settings: Settings, aiohttp_client: AiohttpClient) -> World:
    # A user exists before the app starts, so the first-start admin bootstrap stays quiet.
    await meta.users.add("root", is_admin=True, password=None)
    token = await meta.users.create_token("root")
    client = await aiohttp_client(build_app(settings))
    return World(meta=meta, client=client, tokens={"root": token})
