"""The pages, driven as a person would: repositories and their objects, locks, tokens, administration, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from lfsd.core.audit import AuditQuery
from lfsd.core.auth import Permission, Repo
from lfsd.core.directory import TokenInfo
from lfsd.core.lockpath import LockPath
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.tables import repo_objects
from tests.support import World, basic, blob, lfs_error
from tests.ui.browser import Browsers

PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script>"


async def _repo_id(world: World, path: str) -> int:
    repo = await world.meta.repos.find(RepoPath.parse(path))
    assert repo is not None
    return repo.id


async def _fill(world: World, path: str, count: int) -> dict[str, tuple[int, datetime]]:
    """``count`` objects of distinct sizes and first-upload times (some sharing a size and a time)."""
    repo_id = await _repo_id(world, path)
    objects = {Oid.parse(f"{i:064x}"): 100 + i % 7 for i in range(1, count + 1)}
    await world.meta.objects.link(repo_id, objects)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    times = {}
    async with world.meta.db.transaction() as conn:
        for i, oid in enumerate(objects):
            at = base + timedelta(seconds=i // 3)  # three objects per second: ties broken by oid
            times[str(oid)] = (objects[oid], at)
            await conn.execute(update(repo_objects).where(repo_objects.c.oid == str(oid)).values(created_at=at))
    return times


def _oids(page: str) -> list[str]:
    return re.findall(r'<code class="oid">([0-9a-f]{64})</code>', page)


async def test_objects_page_by_cursor_in_every_order(world: World, browsers: Browsers) -> None:
    await world.repo("acme/game")
    times = await _fill(world, "acme/game", 130)
    browser = await browsers.signed_in("admin1", PASSWORD, admin=True)
    expected = {
        ("date", "desc"): sorted(times, key=lambda oid: (times[oid][1], oid), reverse=True),
        ("date", "asc"): sorted(times, key=lambda oid: (times[oid][1], oid)),
        ("size", "desc"): sorted(times, key=lambda oid: (times[oid][0], oid), reverse=True),
        ("size", "asc"): sorted(times, key=lambda oid: (times[oid][0], oid)),
    }
    for (sort, order), want in expected.items():
        seen: list[str] = []
        url: str | None = f"/ui/repo/acme/game?sort={sort}&order={order}"
        pages = 0
        while url is not None:
            page = await browser.get(url)
            seen += _oids(page)
            found = re.search(r'<a rel="next" href="([^"]+)"', page)
            url = found.group(1).replace("&amp;", "&") if found else None
            pages += 1
        assert seen == want, (sort, order)
        assert pages == 3  # 50 + 50 + 30
    page = await browser.get("/ui/repo/acme/game")
    assert "130" in page  # the object count
    response = await browser.client.get("/ui/repo/acme/game?cursor=garbage")
    assert response.status == 400


async def test_private_repositories_stay_hidden(world: World, browsers: Browsers) -> None:
    await world.repo("acme/secret")
    await world.repo("acme/open", public=True)
    browser = await browsers.signed_in("alice", PASSWORD)
    home = await browser.get("/ui/")
    assert "acme/open" in home and "acme/secret" not in home
    await browser.get("/ui/repo/acme/secret", status=404)
    await browser.get("/ui/repo/acme/open")
    await browser.get("/ui/repo/..%2F..%2Fetc", status=404)


async def test_force_unlock_with_confirmation_and_own_unlock(world: World, browsers: Browsers) -> None:
    await world.repo("acme/game")
    repo_id = await _repo_id(world, "acme/game")
    owner = await browsers.signed_in("bob", PASSWORD)
    lead = await browsers.signed_in("lead", PASSWORD)
    reader = await browsers.signed_in("carol", PASSWORD)
    for name, level in (("bob", "write"), ("lead", "admin"), ("carol", "write")):
        user = await world.meta.users.require(name)
        repo = await world.meta.repos.find(RepoPath.parse("acme/game"))
        assert repo is not None
        await world.meta.repos.set_grant(repo, user.id, Permission.parse(level))
    bob = await world.meta.users.require("bob")
    theirs = await world.meta.locks.create(repo_id, LockPath.parse(f"art/{XSS}.psd"), bob.id, None)
    mine = await world.meta.locks.create(repo_id, LockPath.parse("art/mine.psd"), bob.id, None)

    page = await lead.get("/ui/repo/acme/game")
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Force unlock" in page
    assert "Force unlock" not in await reader.get("/ui/repo/acme/game")
    # A writer without admin sees no button, and the POST itself is refused (and audited by the core).
    await reader.get(f"/ui/locks/{theirs.id}/unlock?repo=acme/game")
    response = await reader.post("/ui/locks/unlock", {"repo": "acme/game", "lock_id": str(theirs.id), "force": "1"})
    assert response.status == 403
    # The repository admin confirms, then forces it open.
    confirm = await lead.get(f"/ui/locks/{theirs.id}/unlock?repo=acme/game")
    assert "Force unlock" in confirm and XSS not in confirm
    response = await lead.post("/ui/locks/unlock", {"repo": "acme/game", "lock_id": str(theirs.id), "force": "1"})
    assert response.status == 303
    assert await world.meta.locks.get(repo_id, theirs.id) is None
    # The owner unlocks their own without force.
    await owner.get(f"/ui/locks/{mine.id}/unlock?repo=acme/game")
    response = await owner.post("/ui/locks/unlock", {"repo": "acme/game", "lock_id": str(mine.id), "force": "0"})
    assert response.status == 303
    assert await world.meta.locks.get(repo_id, mine.id) is None


async def test_tokens_created_shown_once_used_and_revoked(world: World, browsers: Browsers) -> None:
    await world.repo("acme/game")
    browser = await browsers.signed_in("alice", PASSWORD)
    await world.meta.repos.set_grant(
        await _found(world, "acme/game"), (await world.meta.users.require("alice")).id, Permission.WRITE
    )
    await browser.get("/ui/tokens")
    response = await browser.post("/ui/tokens", {"label": XSS, "expires": "30", "scope": "write"})
    assert response.status == 201
    page = await response.text()
    (secret,) = re.findall(r'id="secret" readonly value="(lfsd_[^"]+)"', page)
    assert XSS not in page and "&lt;script&gt;" in page
    listing = await browser.get("/ui/tokens")
    assert secret not in listing  # shown once
    item = blob(100)
    await world.push("acme/game", [item], basic("alice", secret))
    (token_id,) = [t.id for t in await _tokens(world, "alice") if t.label == XSS]
    response = await browser.post("/ui/tokens/revoke", {"token_id": str(token_id)})
    assert response.status == 303
    response = await world.batch("acme/game", "upload", [blob(10).spec()], basic("alice", secret))
    await lfs_error(response, 401)
    # Someone else's token cannot be revoked from here.
    other = await browsers.signed_in("mallory", PASSWORD)
    await other.get("/ui/tokens")
    (root_token,) = await _tokens(world, "root")
    response = await other.post("/ui/tokens/revoke", {"token_id": str(root_token.id)})
    assert response.status == 403


async def _found(world: World, path: str) -> Repo:
    repo = await world.meta.repos.find(RepoPath.parse(path))
    assert repo is not None
    return repo


async def _tokens(world: World, name: str) -> list[TokenInfo]:
    return await world.meta.tokens.tokens_of((await world.meta.users.require(name)).id)


async def test_administration_pages(world: World, browsers: Browsers) -> None:
    admin = await browsers.signed_in("boss", PASSWORD, admin=True)
    user = await browsers.signed_in("alice", PASSWORD)
    for path in ("/ui/admin", "/ui/admin/repos", "/ui/admin/audit", "/ui/admin/status"):
        await user.get(path, status=403)
        await admin.get(path)
    await admin.get("/ui/admin")
    response = await admin.post("/ui/admin/users", {"name": XSS, "password": PASSWORD})
    assert response.status == 303
    page = await admin.get("/ui/admin")
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    response = await admin.post("/ui/admin/users/action", {"name": "alice", "action": "disable"})
    assert response.status == 303
    assert (await world.meta.users.require("alice")).disabled
    await user.get("/ui/", status=303)  # signed out at once
    response = await admin.post("/ui/admin/repos", {"path": "acme/new", "public": "on"})
    assert response.status == 303 and response.headers["Location"] == "/ui/repo/acme/new"
    audit = await admin.get("/ui/admin/audit?action=user.disable")
    assert "user:alice" in audit and "repo.create" not in audit
    status = await admin.get("/ui/admin/status")
    assert "Transfers in flight" in status and 'href="/metrics"' in status
    # A repository renamed and then deleted with its typed confirmation.
    await admin.get("/ui/repo/acme/new")
    response = await admin.post("/ui/rename", {"repo": "acme/new", "new_path": "acme/newer"})
    assert response.headers["Location"] == "/ui/repo/acme/newer"
    await admin.get("/ui/repo/acme/newer")
    response = await admin.post("/ui/delete", {"repo": "acme/newer", "confirm": "acme/new"})
    assert response.status == 400
    response = await admin.post("/ui/delete", {"repo": "acme/newer", "confirm": "acme/newer"})
    assert response.status == 303
    assert await world.meta.repos.find(RepoPath.parse("acme/newer")) is None


async def test_repository_admins_manage_access_and_settings_writers_do_not(world: World, browsers: Browsers) -> None:
    await world.repo("acme/game")
    lead = await browsers.signed_in("lead", PASSWORD)
    writer = await browsers.signed_in("carol", PASSWORD)
    repo = await _found(world, "acme/game")
    for name, level in (("lead", Permission.ADMIN), ("carol", Permission.WRITE)):
        await world.meta.repos.set_grant(repo, (await world.meta.users.require(name)).id, level)

    page = await writer.get("/ui/repo/acme/game")
    assert 'action="/ui/grants"' not in page and 'action="/ui/settings"' not in page
    response = await writer.post("/ui/grants", {"repo": "acme/game", "user": "carol", "permission": "admin"})
    assert response.status == 403
    response = await writer.post("/ui/settings", {"repo": "acme/game", "public": "on", "locking": "on"})
    assert response.status == 403

    page = await lead.get("/ui/repo/acme/game")
    assert 'action="/ui/grants"' in page
    response = await lead.post("/ui/grants", {"repo": "acme/game", "user": "carol", "permission": "read"})
    assert response.status == 303
    response = await lead.post("/ui/settings", {"repo": "acme/game", "public": "on", "locking": "on"})
    assert response.status == 303
    repo = await _found(world, "acme/game")
    assert repo.is_public
    carol = await world.meta.users.require("carol")
    assert await world.meta.repos.grant_of(repo, carol.id) == Permission.READ
    response = await lead.post("/ui/grants", {"repo": "acme/game", "user": "carol", "permission": "none"})
    assert response.status == 303
    assert await world.meta.repos.grant_of(repo, carol.id) == Permission.NONE
    # Renaming and deleting stay with server admins.
    response = await lead.post("/ui/rename", {"repo": "acme/game", "new_path": "acme/other"})
    assert response.status == 403
    entries = await world.meta.audit.entries(AuditQuery(limit=20))
    outcomes = {(entry.actor, entry.action, entry.outcome.value) for entry in entries}
    assert ("carol", "repo.grant", "denied") in outcomes
    assert ("lead", "repo.grant", "ok") in outcomes and ("lead", "repo.public", "ok") in outcomes
