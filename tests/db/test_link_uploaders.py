"""The uploader a link records, on every database: the first link of an object to a repository names it, whether
that link was alone or grouped with others in one commit; later links of the same object never change it."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select

from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
from lfsd.db.tables import repo_objects


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


async def _uploaders(meta: Metadata, repo_id: int) -> dict[str, int | None]:
    query = select(repo_objects.c.oid, repo_objects.c.uploader_id).where(repo_objects.c.repo_id == repo_id)
    async with meta.db.transaction() as conn:
        return {row.oid: row.uploader_id for row in await conn.execute(query)}


async def test_the_first_link_names_the_uploader_and_keeps_it(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    tools = await meta.repos.create(RepoPath.parse("acme/tools"), is_public=False)
    alice = await meta.users.add("alice", is_admin=False, password=None)
    bob = await meta.users.add("bob", is_admin=False, password=None)
    await meta.objects.link(game.id, {_oid(1): 10}, alice.id)
    await meta.objects.link(game.id, {_oid(1): 10, _oid(2): 20}, bob.id)
    await meta.objects.link(game.id, {_oid(3): 30})  # no user (the command line, an anonymous link)
    await meta.objects.link(game.id, {_oid(3): 30}, bob.id)  # a later link does not fill it in
    await meta.objects.link(tools.id, {_oid(1): 10}, bob.id)  # another repository: its own first link
    assert await _uploaders(meta, game.id) == {str(_oid(1)): alice.id, str(_oid(2)): bob.id, str(_oid(3)): None}
    assert await _uploaders(meta, tools.id) == {str(_oid(1)): bob.id}


async def test_links_committed_together_each_keep_their_own_uploader(meta: Metadata) -> None:
    game = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    users = [await meta.users.add(f"user{n}", is_admin=False, password=None) for n in range(10)]
    await asyncio.gather(*(meta.objects.link(game.id, {_oid(n): n + 1}, users[n].id) for n in range(10)))
    assert await _uploaders(meta, game.id) == {str(_oid(n)): users[n].id for n in range(10)}
    # The same object from two users at once: one of them, never none.
    await asyncio.gather(*(meta.objects.link(game.id, {_oid(99): 5}, user.id) for user in users[:2]))
    assert (await _uploaders(meta, game.id))[str(_oid(99))] in {users[0].id, users[1].id}
