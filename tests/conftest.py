from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lfsd.app import Metadata, StoreWrapper, build_app
from lfsd.config import Settings
from tests.databases import BACKENDS, Server, server_for
from tests.s3server import CREDENTIALS, S3Server, running_s3
from tests.support import World

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the session; the AWS credential variables point every client (and lfsd) at it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        with running_s3() as server:
            yield server


@pytest.fixture(scope="session")
def migrated_databases() -> Iterator[dict[str, tuple[Server, str]]]:
    """One migrated database per server for the whole session; each test starts from emptied tables."""
    created: dict[str, tuple[Server, str]] = {}
    yield created
    for server, name in created.values():
        server.drop(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, migrated_databases: dict[str, tuple[Server, str]]) -> str | None:
    """None for the embedded SQLite database; otherwise an emptied, migrated database on a real server."""
    backend: str = request.param
    if backend == "sqlite":
        return None
    return migrated_url(backend, migrated_databases)


def migrated_url(backend: str, migrated_databases: dict[str, tuple[Server, str]]) -> str:
    """The session's migrated database on ``backend``'s server, emptied for the calling test."""
    if backend not in migrated_databases:
        server = server_for(backend)
        name = server.create()
        migrated_databases[backend] = (server, name)
        settings = Settings(database_url=server.url(name))
        # In a thread of its own: the caller may be inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(_migrate(settings))).result()
    server, name = migrated_databases[backend]
    server.truncate(name)
    return server.url(name)


async def _migrate(settings: Settings) -> None:
    meta = await Metadata.open(settings, migrate=True)
    await meta.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        listen="127.0.0.1:0",
        fsync=False,
        buffer_size=64 * 1024,
    )


@pytest.fixture
async def meta(settings: Settings) -> AsyncIterator[Metadata]:
    opened = await Metadata.open(settings)
    yield opened
    await opened.close()


async def open_world(
    settings: Settings, aiohttp_client: AiohttpClient, *, wrap_store: StoreWrapper | None = None
) -> World:
    """A world on its own settings, with a server admin ``root`` and repository ``acme/game``; close its meta."""
    meta = await Metadata.open(settings)
    await meta.users.add("root", is_admin=True, password=None)
    token = await meta.users.create_token("root")
    client = await aiohttp_client(build_app(settings, wrap_store=wrap_store))
    world = World(meta=meta, client=client, tokens={"root": token})
    await world.repo("acme/game")
    return world


@pytest.fixture
async def world(meta: Metadata, settings: Settings, aiohttp_client: AiohttpClient) -> World:
    # A user exists before the app starts, so the first-start admin bootstrap stays quiet.
    await meta.users.add("root", is_admin=True, password=None)
    token = await meta.users.create_token("root")
    client = await aiohttp_client(build_app(settings))
    return World(meta=meta, client=client, tokens={"root": token})
