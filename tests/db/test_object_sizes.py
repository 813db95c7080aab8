"""The object index's sizes queries, one per kind of caller (each built once with bind parameters, and on SQLite
run in one driver trip: db/sqlite_trip.py), give the same answers on every database."""

from __future__ import annotations

import hashlib

from lfsd.core.auth import Identity, Permission
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


async def test_sizes_by_kind_of_caller(meta: Metadata) -> None:
    public = await meta.repos.create(RepoPath.parse("acme/public"), is_public=True)
    granted = await meta.repos.create(RepoPath.parse("acme/granted"), is_public=False)
    closed = await meta.repos.create(RepoPath.parse("acme/closed"), is_public=False)
    await meta.users.add("reader", is_admin=False, password=None)
    reader = await meta.users.find("reader")
    assert reader is not None
    await meta.repos.set_grant(granted, reader.id, Permission.READ)
    await meta.objects.link(public.id, {_oid(1): 1})
    await meta.objects.link(granted.id, {_oid(2): 2})
    await meta.objects.link(closed.id, {_oid(3): 3, _oid(1): 1})
    asked = [_oid(n) for n in range(1, 5)]

    user = Identity(reader.id, "reader", is_admin=False)
    admin = Identity(reader.id + 1000, "root", is_admin=True)
    scoped = Identity(reader.id, "reader", is_admin=False, repo_scope=granted.path)
    scoped_elsewhere = Identity(reader.id, "reader", is_admin=False, repo_scope=closed.path)
    scope_grants = Identity(reader.id, "reader", is_admin=False, repo_scope=closed.path, scope_grant=Permission.READ)

    assert await meta.objects.readable_sizes(None, asked) == {_oid(1): 1}
    assert await meta.objects.readable_sizes(user, asked) == {_oid(1): 1, _oid(2): 2}
    assert await meta.objects.readable_sizes(admin, asked) == {_oid(1): 1, _oid(2): 2, _oid(3): 3}
    assert await meta.objects.readable_sizes(scoped, asked) == {_oid(2): 2}
    assert await meta.objects.readable_sizes(scoped_elsewhere, asked) == {}
    assert await meta.objects.readable_sizes(scope_grants, asked) == {_oid(1): 1, _oid(3): 3}
    assert await meta.objects.held_sizes(closed.id, asked) == {_oid(1): 1, _oid(3): 3}
    assert await meta.objects.held_sizes(closed.id, []) == {}
    # An upload batch's question: held by the repository, and readable elsewhere among the others.
    assert await meta.objects.upload_sizes(granted.id, user, asked) == ({_oid(2): 2}, {_oid(1): 1})
    assert await meta.objects.upload_sizes(closed.id, admin, asked) == ({_oid(1): 1, _oid(3): 3}, {_oid(2): 2})
    assert await meta.objects.upload_sizes(public.id, scope_grants, asked) == ({_oid(1): 1}, {_oid(3): 3})
    assert await meta.objects.upload_sizes(public.id, None, []) == ({}, {})


async def test_sizes_beyond_one_in_chunk(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/many"), is_public=True)
    held = {_oid(n): n for n in range(1, 1102)}
    await meta.objects.link(repo.id, held)
    asked = [*held, _oid(99_999)]
    assert await meta.objects.held_sizes(repo.id, asked) == held
    assert await meta.objects.readable_sizes(None, asked) == held
    other = await meta.repos.create(RepoPath.parse("acme/other"), is_public=False)
    mine = {oid: size for oid, size in held.items() if size % 2}
    await meta.objects.link(other.id, mine)
    assert await meta.objects.upload_sizes(other.id, None, asked) == (
        mine,
        {oid: size for oid, size in held.items() if oid not in mine},
    )
