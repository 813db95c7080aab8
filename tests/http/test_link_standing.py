"""A transfer link stops working once its caller no longer stands: token revoked, user disabled or deleted, grant
removed or lowered, repository made private. Checked when the link is used, within ``link_standing_ttl``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete

from lfsd.config import Settings
from lfsd.core.auth import Permission, Repo
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.tables import repos, users
from tests.conftest import AiohttpClient, open_world
from tests.support import Blob, World, basic, blob, lfs_error


@pytest.fixture
async def fresh(settings: Settings, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    """Checks every use (``link_standing_ttl`` 0), so the tests need not wait for the cache."""
    world = await open_world(settings.replace(link_standing_ttl=0.0), aiohttp_client)
    yield world
    await world.meta.close()


async def _stored(world: World, repo: str = "acme/game") -> Blob:
    item = blob(100)
    await world.push(repo, [item], world.auth("root"))
    return item


async def _link(world: World, op: str, item: Blob, headers: dict[str, str], repo: str = "acme/game") -> dict[str, Any]:
    (obj,) = await world.batch_ok(repo, op, [item], headers)
    action: dict[str, Any] = obj["actions"][op]
    return action


async def _grant(world: World, name: str, level: Permission, repo: str = "acme/game") -> tuple[Repo, int]:
    found = await world.meta.repos.find(RepoPath(repo))
    assert found is not None
    user_id = (await world.meta.users.require(name)).id
    await world.meta.repos.set_grant(found, user_id, level)
    return found, user_id


async def _get(world: World, action: dict[str, Any]) -> Any:
    return await world.client.session.get(action["href"], headers=action["header"])


async def _put(world: World, action: dict[str, Any], item: Blob) -> Any:
    return await world.client.session.put(action["href"], data=item.data, headers=action["header"])


async def test_link_of_a_revoked_token_stops_working(fresh: World) -> None:
    await fresh.user("alice")
    await _grant(fresh, "alice", Permission.READ)
    item = await _stored(fresh)
    # Another token of alice's stays valid: the link names the token that asked for it.
    other_token = await fresh.meta.users.create_token("alice")
    link = await _link(fresh, "download", item, fresh.auth("alice"))
    other = await _link(fresh, "download", item, basic("alice", other_token))
    assert (await _get(fresh, link)).status == 200
    await fresh.meta.users.revoke_token(fresh.tokens["alice"])
    await lfs_error(await _get(fresh, link), 401)
    assert (await _get(fresh, other)).status == 200


async def test_links_of_a_disabled_user_stop_working(fresh: World) -> None:
    await fresh.user("alice", password="correct horse")
    await _grant(fresh, "alice", Permission.WRITE)
    item = await _stored(fresh)
    by_token = await _link(fresh, "download", item, fresh.auth("alice"))
    by_password = await _link(fresh, "download", item, basic("alice", "correct horse"))
    upload_item = blob(77)
    upload = await _link(fresh, "upload", upload_item, basic("alice", "correct horse"))
    await fresh.meta.users.set_disabled("alice", True)
    await lfs_error(await _get(fresh, by_token), 401)
    await lfs_error(await _get(fresh, by_password), 401)
    await lfs_error(await _put(fresh, upload, upload_item), 401)
    # Enabled again (and the token never revoked): the links work again.
    await fresh.meta.users.set_disabled("alice", False)
    assert (await _get(fresh, by_password)).status == 200


async def test_links_of_a_deleted_user_stop_working(fresh: World) -> None:
    await fresh.user("alice", password="correct horse")
    await _grant(fresh, "alice", Permission.READ)
    item = await _stored(fresh)
    link = await _link(fresh, "download", item, basic("alice", "correct horse"))
    async with fresh.meta.db.transaction() as conn:
        await conn.execute(users.delete().where(users.c.name == "alice"))
    await lfs_error(await _get(fresh, link), 401)


async def test_links_stop_when_the_grant_is_removed_or_lowered(fresh: World) -> None:
    await fresh.user("alice")
    repo, alice = await _grant(fresh, "alice", Permission.WRITE)
    item = await _stored(fresh)
    download = await _link(fresh, "download", item, fresh.auth("alice"))
    new = blob(55)
    upload = await _link(fresh, "upload", new, fresh.auth("alice"))
    # Lowered to read: downloads go on, the upload is refused as a reader's would be.
    await fresh.meta.repos.set_grant(repo, alice, Permission.READ)
    await lfs_error(await _put(fresh, upload, new), 403)
    assert (await _get(fresh, download)).status == 200
    # Removed: as if the repository did not exist.
    await fresh.meta.repos.remove_grant(repo, alice)
    await lfs_error(await _get(fresh, download), 404)


async def test_anonymous_links_stop_when_the_repository_is_made_private(fresh: World) -> None:
    await fresh.repo("acme/open", public=True)
    item = await _stored(fresh, "acme/open")
    link = await _link(fresh, "download", item, {}, "acme/open")
    assert (await _get(fresh, link)).status == 200
    repo = await fresh.meta.repos.find(RepoPath("acme/open"))
    assert repo is not None
    await fresh.meta.repos.set_public(repo, False)
    await lfs_error(await _get(fresh, link), 401)


async def test_a_server_admins_link_needs_no_grant(fresh: World) -> None:
    item = await _stored(fresh)
    link = await _link(fresh, "download", item, fresh.auth("root"))
    assert (await _get(fresh, link)).status == 200


async def test_the_check_is_remembered_for_link_standing_ttl(world: World) -> None:
    """The default (5 s) spares a query per transfer; a revocation then takes effect within those seconds."""
    await world.repo("acme/game")
    await world.user("alice")
    await _grant(world, "alice", Permission.READ)
    item = await _stored(world)
    link = await _link(world, "download", item, world.auth("alice"))
    assert (await _get(world, link)).status == 200
    await world.meta.users.revoke_token(world.tokens["alice"])
    assert (await _get(world, link)).status == 200  # still within the cached check


async def test_download_links_stop_when_the_repository_is_deleted(fresh: World) -> None:
    """A linked download no longer asks the index (issue 17): the standing check is what stops it."""
    world = fresh
    item = await _stored(world)
    action = await _link(world, "download", item, world.auth("root"))
    assert (await _get(world, action)).status == 200
    found = await world.meta.repos.find(RepoPath("acme/game"))
    assert found is not None
    async with world.meta.db.transaction() as conn:
        await conn.execute(delete(repos).where(repos.c.id == found.id))
    await lfs_error(await _get(world, action), 404)


async def test_download_links_stop_when_their_object_is_removed_from_the_repository(fresh: World) -> None:
    """A download through a signed link runs no SQL for its object, until objects are removed from the repository:
    links issued before that have their object checked against the index again."""
    await fresh.repo("acme/other")
    removed, kept = await _stored(fresh), await _stored(fresh)
    await fresh.push("acme/other", [removed], fresh.auth("root"))
    before_removed = await _link(fresh, "download", removed, fresh.auth("root"))
    before_kept = await _link(fresh, "download", kept, fresh.auth("root"))
    elsewhere = await _link(fresh, "download", removed, fresh.auth("root"), repo="acme/other")
    assert (await _get(fresh, before_removed)).status == 200

    unlinked = await SqlIndexInventory(fresh.meta.db).unlink_from(RepoPath("acme/game"), [Oid.parse(removed.oid)])
    assert unlinked == 1
    await lfs_error(await _get(fresh, before_removed), 404)
    assert (await _get(fresh, before_kept)).status == 200  # re-checked, and still held
    assert (await _get(fresh, elsewhere)).status == 200  # another repository keeps it
