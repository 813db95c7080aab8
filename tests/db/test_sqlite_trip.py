"""SQLite's hot reads (held and readable sizes, a repository with its grant) run as one trip to aiosqlite's thread
each (every database runs tests/db/test_object_sizes.py for their answers; this file pins what is SQLite's)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.pool import QueuePool

from lfsd.config import Settings
from lfsd.core.auth import Permission
from lfsd.core.errors import InsufficientStorage
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.db.sqlite_trip import SqliteHotPath
from lfsd.db.tables import objects
from lfsd.resources import open_metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


@pytest.fixture
async def sqlite_meta(tmp_path: Path) -> AsyncIterator[Metadata]:
    opened = await open_metadata(Settings(data_dir=tmp_path / "data", fsync=False))
    assert opened.db.dialect == "sqlite"
    yield opened
    await opened.close()


async def test_held_sizes_is_one_trip_whatever_the_number_of_chunks(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    other = await sqlite_meta.repos.create(RepoPath.parse("acme/other"), is_public=False)
    held = {_oid(n): n for n in range(1, 1201)}
    await sqlite_meta.objects.link(repo.id, held)
    await sqlite_meta.objects.link(other.id, {_oid(5000): 1})
    trips.clear()
    asked = [*held, _oid(5000), _oid(9999)]  # three IN chunks; one held elsewhere, one nowhere
    assert await sqlite_meta.objects.held_sizes(repo.id, asked) == held
    assert trips == ["_transaction"]
    assert await sqlite_meta.objects.held_sizes(repo.id, []) == {}


async def test_an_upload_batchs_sizes_are_one_trip(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    public = await sqlite_meta.repos.create(RepoPath.parse("acme/public"), is_public=True)
    await sqlite_meta.objects.link(repo.id, {_oid(1): 1})
    await sqlite_meta.objects.link(public.id, {_oid(1): 1, _oid(2): 2})
    trips.clear()
    asked = [_oid(1), _oid(2), _oid(3)]
    assert await sqlite_meta.objects.upload_sizes(repo.id, None, asked) == ({_oid(1): 1}, {_oid(2): 2})
    assert trips == ["_transaction"]


async def test_readable_sizes_is_one_trip(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/public"), is_public=True)
    await sqlite_meta.objects.link(repo.id, {_oid(1): 1})
    trips.clear()
    assert await sqlite_meta.objects.readable_sizes(None, [_oid(1), _oid(2)]) == {_oid(1): 1}
    assert trips == ["_transaction"]


async def test_a_repository_with_its_grant_is_one_trip(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=True)
    await sqlite_meta.users.add("reader", is_admin=False, password=None)
    reader = await sqlite_meta.users.find("reader")
    assert reader is not None
    await sqlite_meta.repos.set_grant(repo, reader.id, Permission.WRITE)
    trips.clear()
    assert await sqlite_meta.repos.find_with_grant(repo.path, reader.id) == (repo, Permission.WRITE)
    assert await sqlite_meta.repos.find_with_grant(repo.path, 0) == (repo, Permission.NONE)
    assert await sqlite_meta.repos.find_with_grant(RepoPath.parse("acme/none"), reader.id) == (None, Permission.NONE)
    assert trips == ["_transaction"] * 3


async def test_a_token_lookup_is_one_trip_once_its_last_use_is_recent(sqlite_meta: Metadata, trips: list[str]) -> None:
    await sqlite_meta.users.add("writer", is_admin=False, password=None)
    token = await sqlite_meta.users.create_token("writer")
    first = await sqlite_meta.users.identity_for_token(token)  # writes the last use (once a minute)
    trips.clear()
    again = await sqlite_meta.users.identity_for_token(token)
    assert again == first and again is not None and again.name == "writer"
    assert trips == ["_transaction"]
    assert await sqlite_meta.users.identity_for_token(token + "x") is None


async def test_the_batch_quota_check_is_one_trip(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await sqlite_meta.usage.set_owner_quota("acme", 100)
    await sqlite_meta.objects.link(repo.id, {_oid(1): 60})
    trips.clear()
    await sqlite_meta.usage.check_upload(repo.id, 40)
    with pytest.raises(InsufficientStorage):
        await sqlite_meta.usage.check_upload(repo.id, 41)
    assert trips == ["_transaction"] * 2


async def test_touch_is_one_trip_and_writes_only_marked_rows(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    stored = {_oid(n): n for n in range(1, 1201)}
    await sqlite_meta.objects.link(repo.id, stored)
    marked = [_oid(n) for n in range(1, 1201, 2)]  # 600: two IN chunks
    async with sqlite_meta.db.transaction() as conn:
        await conn.execute(update(objects).where(objects.c.oid.in_(marked[:300])).values(unlinked_at=utcnow()))
        await conn.execute(update(objects).where(objects.c.oid.in_(marked[300:])).values(unlinked_at=utcnow()))
    trips.clear()
    await sqlite_meta.objects.touch([_oid(n) for n in range(5000, 5100)])  # new objects: nothing to write
    assert trips == ["_transaction"]
    before = utcnow()
    await sqlite_meta.objects.touch([*stored, _oid(9999)])
    assert trips == ["_transaction"] * 2
    async with sqlite_meta.db.transaction() as conn:
        rows = (await conn.execute(select(objects.c.oid, objects.c.touched_at))).all()
    touched = {row.oid for row in rows if row.touched_at is not None}
    assert touched == set(marked)
    assert all(row.touched_at >= before for row in rows if row.touched_at is not None)


async def test_a_cancelled_trip_gives_the_connection_back_once_the_thread_is_done(sqlite_meta: Metadata) -> None:
    hot = SqliteHotPath(sqlite_meta.db)
    started, finished = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> int:
        started.set()
        time.sleep(0.2)
        finished.set()
        return 1

    trip = asyncio.create_task(hot.run(slow))
    await asyncio.to_thread(started.wait, 5)
    trip.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trip
    assert finished.is_set()  # the connection was held until the thread was done with it
    pool = sqlite_meta.db.engine.sync_engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0
    assert await hot.run(lambda conn: conn.execute("SELECT 2").fetchone()) == (2,)
