"""SQLite's hot statements (link, held_sizes) run as one trip to aiosqlite's thread, with the same rows and errors
as the SQLAlchemy path (every database runs tests/db/test_link_group_commit.py; this file pins what is SQLite's)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import select

from lfsd.config import Settings
from lfsd.core.auth import Permission
from lfsd.core.errors import NotFound
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
from lfsd.db.tables import objects, repo_objects
from lfsd.resources import open_metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


@pytest.fixture
async def sqlite_meta(tmp_path: Path) -> AsyncIterator[Metadata]:
    opened = await open_metadata(Settings(data_dir=tmp_path / "data", fsync=False))
    assert opened.db.dialect == "sqlite"
    yield opened
    await opened.close()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions handed to aiosqlite's thread, by name (aiosqlite is pinned; its queue is ``_execute``)."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_link_is_one_trip_and_reads_back_through_sqlalchemy(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    before = datetime.now(UTC)
    trips.clear()
    await sqlite_meta.objects.link(repo.id, {_oid(1): 10, _oid(2): 20})
    assert trips == ["_transaction"]
    async with sqlite_meta.db.transaction() as conn:
        rows = (await conn.execute(select(objects).order_by(objects.c.size))).all()
        links = (await conn.execute(select(repo_objects).order_by(repo_objects.c.size))).all()
    assert [(row.oid, row.size) for row in rows] == [(str(_oid(1)), 10), (str(_oid(2)), 20)]
    assert [(row.repo_id, row.oid, row.size) for row in links] == [
        (repo.id, str(_oid(1)), 10),
        (repo.id, str(_oid(2)), 20),
    ]
    # Times go through the column type: aware UTC when read back by SQLAlchemy.
    assert all(row.created_at.tzinfo is not None and row.created_at >= before.replace(microsecond=0) for row in rows)


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


async def test_a_link_to_a_missing_repository_writes_nothing(sqlite_meta: Metadata) -> None:
    with pytest.raises(NotFound):
        await sqlite_meta.objects.link(12345, {_oid(1): 1})
    async with sqlite_meta.db.transaction() as conn:
        assert (await conn.execute(select(objects))).all() == []  # the object row was rolled back with the link


async def test_linking_again_keeps_the_first_rows(sqlite_meta: Metadata) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await sqlite_meta.objects.link(repo.id, {_oid(1): 1})
    await sqlite_meta.objects.link(repo.id, {_oid(1): 1, _oid(2): 2})
    assert await sqlite_meta.objects.held_sizes(repo.id, [_oid(1), _oid(2)]) == {_oid(1): 1, _oid(2): 2}


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
