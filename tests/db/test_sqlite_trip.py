"""SQLite's hot reads (held and readable sizes, a repository with its grant) run as one trip to aiosqlite's thread
each (every database runs tests/db/test_object_sizes.py for their answers; this file pins what is SQLite's)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from lfsd.config import Settings
from lfsd.core.auth import Permission
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
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
