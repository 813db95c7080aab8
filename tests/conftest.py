from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lfsd.app import StoreWrapper, build_app
from lfsd.config import Settings
from lfsd.db.metadata import Metadata
from lfsd.resources import open_metadata
from tests.databases import BACKENDS, Server, server_for
from tests.s3server import CREDENTIALS, S3Server, running_s3
from tests.support import World

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]

ROOT = Path(__file__).resolve().parents[1]
# Byte-code and tool caches come from running Python and the linters, not from what a test does.
_CACHES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


def _stray_paths() -> set[str] | None:
    """What ``git status`` shows in the checkout: untracked, ignored (caches aside) and changed paths.

    None outside a git checkout (an unpacked sdist), where there is nothing to compare against.
    """
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching", "-z", "--", "."],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        return None
    if result.returncode != 0:
        return None
    entries = result.stdout.decode("utf-8", "replace").split("\0")
    return {entry for entry in entries if entry and not _CACHES.intersection(Path(entry[3:]).parts)}


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its example database and Unicode tables in ``./.hypothesis``: give it a temp dir instead.

    Here rather than in a fixture: test modules build their strategies (and read the tables) while being collected.
    """
    if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
        home = tempfile.mkdtemp(prefix="lfsd-hypothesis-")
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = home
        config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


EXIT_WATCHDOG_SECONDS = 120.0


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A thread a test left running would keep pytest from exiting after its summary, until CI's time limit.

    Past ``EXIT_WATCHDOG_SECONDS`` a daemon thread prints the stacks of the threads still running and ends the
    process with status 1: a hang becomes a failure that names its cause.
    """

    def stuck() -> None:
        lines = ["pytest could not exit: these threads are still running"]
        frames = sys._current_frames()
        for thread in threading.enumerate():
            if thread is threading.current_thread() or thread.ident not in frames:
                continue
            lines.append(f"--- {thread.name} (daemon={thread.daemon})")
            lines += traceback.format_stack(frames[thread.ident])
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
        os._exit(1)

    watchdog = threading.Timer(EXIT_WATCHDOG_SECONDS, stuck)
    watchdog.daemon = True
    watchdog.start()


@pytest.fixture(scope="session", autouse=True)
def _working_tree_stays_clean() -> Iterator[None]:
    """Fail the run when the tests leave files in the checkout: everything a test writes belongs in tmp_path."""
    before = _stray_paths()
    yield
    if before is None:
        return
    after = _stray_paths() or set()
    left = sorted(after - before)
    if left:
        pytest.fail(f"the tests left files in the working tree (git status): {left}", pytrace=False)


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
    meta = await open_metadata(settings, migrate=True)
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
    opened = await open_metadata(settings)
    yield opened
    await opened.close()


async def open_world(
    settings: Settings, aiohttp_client: AiohttpClient, *, wrap_store: StoreWrapper | None = None
) -> World:
    """A world on its own settings, with a server admin ``root`` and repository ``acme/game``; close its meta."""
    meta = await open_metadata(settings)
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


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions handed to aiosqlite's thread, by name: one per trip from the event loop (aiosqlite is pinned;
    its queue to the thread is ``_execute``)."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen
