"""``gc --unreachable``'s first half: objects no ref of the hosted Git repository points to are unlinked from that
repository, on every database, with the real git reading the pointers."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from lfsd.config import Settings
from lfsd.core.oid import Oid
from lfsd.core.reachability import LinkIndex, ReferencedObjects, unlink_unreachable
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.tables import repo_objects
from lfsd.git.pointers import GitReferencedObjects
from lfsd.git.repositories import BareRepositories
from tests.git.test_changes import ENV
from tests.support import Blob, World, blob

GAME = RepoPath("acme/game")


def _pointer(item: Blob) -> str:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{item.oid}\nsize {len(item.data)}\n"


def _push_pointers(tmp: Path, bare: Path, items: list[Blob]) -> None:
    """A commit whose files are the pointers of ``items``, pushed to ``bare`` as main."""
    work = tmp / "work"
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(work)], env=ENV, check=True)
    for number, item in enumerate(items):
        (work / f"f{number}.bin").write_text(_pointer(item))
    for args in (["add", "."], ["commit", "-q", "-m", "pointers"], ["push", "-q", str(bare), "main"]):
        subprocess.run(["git", *args], cwd=work, env=ENV, check=True)


async def _held(world: World) -> set[str]:
    index = SqlIndexInventory(world.meta.db)
    return set(await index.linked_before(GAME, utcnow() + timedelta(days=1), None, 1000))


async def test_unreferenced_objects_are_unlinked_and_young_links_kept(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    await world.repo("acme/game")
    kept, dropped, shared = blob(100), blob(200), blob(300)
    await world.push("acme/game", [kept, dropped, shared], world.auth("root"))
    await world.repo("acme/other")
    await world.push("acme/other", [shared], world.auth("root"))
    repositories = BareRepositories(settings.effective_git_root)
    refs = GitReferencedObjects(repositories)
    index = SqlIndexInventory(world.meta.db)

    # No Git repository (or one nothing was pushed to): lfsd cannot know, and unlinks nothing.
    result = await unlink_unreachable(index, refs, GAME, utcnow() + timedelta(seconds=1))
    assert not result.hosted and result.unlinked == ()
    bare = repositories.ensure_now(GAME)
    result = await unlink_unreachable(index, refs, GAME, utcnow() + timedelta(seconds=1))
    assert not result.hosted and await _held(world) == {kept.oid, dropped.oid, shared.oid}

    _push_pointers(tmp_path, bare, [kept])
    # Links younger than the cutoff stay: their pointers may be on their way.
    young = await unlink_unreachable(index, refs, GAME, utcnow() - timedelta(hours=1))
    assert young.hosted and young.unlinked == ()
    dry = await unlink_unreachable(index, refs, GAME, utcnow() + timedelta(seconds=1), dry_run=True)
    assert sorted(dry.unlinked) == sorted([dropped.oid, shared.oid])
    assert await _held(world) == {kept.oid, dropped.oid, shared.oid}
    done = await unlink_unreachable(index, refs, GAME, utcnow() + timedelta(seconds=1))
    assert sorted(done.unlinked) == sorted([dropped.oid, shared.oid]) and done.relinked == 0
    assert await _held(world) == {kept.oid}
    # Another repository holding the same object keeps it.
    other = await index.linked_before(RepoPath("acme/other"), utcnow() + timedelta(days=1), None, 10)
    assert other == [shared.oid]


class _PushLandsMeanwhile:
    """The refs gain a pointer between the collector's two reads, as when a push lands while it runs."""

    def __init__(self, first: set[Oid], then: set[Oid]) -> None:
        self._answers = [first, then]

    async def referenced(self, repo: RepoPath) -> set[Oid] | None:
        return self._answers.pop(0)


async def test_a_pointer_that_lands_meanwhile_gets_its_object_back(world: World) -> None:
    await world.repo("acme/game")
    a, b = blob(100), blob(200)
    await world.push("acme/game", [a, b], world.auth("root"))
    refs: ReferencedObjects = _PushLandsMeanwhile(set(), {Oid.parse(b.oid)})
    index = SqlIndexInventory(world.meta.db)
    result = await unlink_unreachable(index, refs, GAME, utcnow() + timedelta(seconds=1))
    assert result.unlinked == (a.oid,) and result.relinked == 1
    assert await _held(world) == {b.oid}
    assert await index.relink(GAME, [Oid.parse(b.oid)]) == 0  # linked already: nothing to do, no error


async def _age_links(world: World, days: int) -> None:
    """The repository's links as if made ``days`` ago (and never confirmed since)."""
    async with world.meta.db.transaction() as conn:
        await conn.execute(update(repo_objects).values(created_at=utcnow() - timedelta(days=days), confirmed_at=None))


class _BatchAfterListing:
    """The index, with an upload batch answered between the collector's listing and its unlink."""

    def __init__(self, index: SqlIndexInventory, batch: Callable[[], Awaitable[object]]) -> None:
        self._index = index
        self._batch = batch

    async def linked_before(self, repo: RepoPath, cutoff: datetime, after: Oid | None, limit: int) -> list[Oid]:
        listed = await self._index.linked_before(repo, cutoff, after, limit)
        if listed:
            await self._batch()
        return listed

    async def unlink_stale(self, repo: RepoPath, oids: Collection[Oid], cutoff: datetime) -> list[Oid]:
        return await self._index.unlink_stale(repo, oids, cutoff)

    async def relink(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        return await self._index.relink(repo, oids)


@pytest.mark.parametrize("batch_at", ["before the collector", "between its listing and its unlink"])
async def test_an_object_an_upload_batch_found_held_is_kept_until_its_push_lands(world: World, batch_at: str) -> None:
    """A branch deleted on the server days ago is pushed again: the batch answers "the repository has it" and the
    client sends nothing, then pushes the commits. `gc --unreachable` running meanwhile must not unlink it; else
    the pointer would land on an object the repository no longer holds, and the collector would take its bytes."""
    await world.repo("acme/game")
    restored, forgotten = blob(100), blob(200)
    await world.push("acme/game", [restored, forgotten], world.auth("root"))
    await _age_links(world, 2)

    async def batch() -> None:
        (answer,) = await world.batch_ok("acme/game", "upload", [restored], world.auth("root"))
        assert "actions" not in answer  # the repository has it: nothing to send

    index = SqlIndexInventory(world.meta.db)
    if batch_at == "before the collector":
        await batch()
        links: LinkIndex = index
    else:
        links = _BatchAfterListing(index, batch)
    nothing_points: ReferencedObjects = _PushLandsMeanwhile(set(), set())
    result = await unlink_unreachable(links, nothing_points, GAME, utcnow() - timedelta(days=1))
    assert result.unlinked == (Oid.parse(forgotten.oid),)
    assert await _held(world) == {restored.oid}


async def test_a_link_unlinked_as_the_batch_confirms_it_is_uploaded_again(world: World) -> None:
    """The other order: `gc --unreachable` unlinks first, then the batch finds the repository no longer holds the
    object and asks for it as for a new one."""
    await world.repo("acme/game")
    item = blob(100)
    await world.push("acme/game", [item], world.auth("root"))
    await _age_links(world, 2)
    index = SqlIndexInventory(world.meta.db)
    stale = await index.linked_before(GAME, utcnow() - timedelta(days=1), None, 10)
    assert stale == [Oid.parse(item.oid)]
    assert await index.unlink_stale(GAME, stale, utcnow() - timedelta(days=1)) == stale
    (answer,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    assert "upload" in answer["actions"]


async def test_a_batch_naming_recent_links_again_stamps_nothing(world: World) -> None:
    """Links made (or stamped) within half a link lifetime are kept by the collector anyway: a push that names them
    again writes nothing. Older ones are stamped."""
    await world.repo("acme/game")
    item = blob(100)
    await world.push("acme/game", [item], world.auth("root"))

    async def stamp() -> object:
        async with world.meta.db.transaction() as conn:
            return (await conn.execute(select(repo_objects.c.confirmed_at))).scalar_one()

    await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    assert await stamp() is None
    await _age_links(world, 2)
    await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    assert await stamp() is not None
