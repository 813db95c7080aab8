"""The administration use cases against a running app on every database: what each change does to the next
request, who may make it, and what the audit log keeps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from lfsd.config import Settings
from lfsd.core.admin import Administration
from lfsd.core.audit import Actor, AuditQuery, Outcome
from lfsd.core.auth import Permission
from lfsd.core.errors import BadRequest, Conflict, Forbidden, NotFound
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.db.tables import audit, tokens
from tests.conftest import AiohttpClient, open_world
from tests.support import LFS_HEADERS, World, basic, blob, lfs_error

CLI = Actor.cli("operator")
GAME = RepoPath("acme/game")


def _admin(meta: Metadata, **options: Any) -> Administration:
    return Administration(meta.users, meta.tokens, meta.repos, meta.locks, meta.audit, utcnow, **options)


@pytest.fixture
async def fresh(settings: Settings, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    """Links checked on every use (``link_standing_ttl`` 0), so a change shows at the next request."""
    world = await open_world(settings.replace(link_standing_ttl=0.0), aiohttp_client)
    yield world
    await world.meta.close()


async def _token(world: World, name: str, scope: Scope = Scope.WRITE, days: int | None = None) -> dict[str, str]:
    _, secret = await _admin(world.meta).create_token(CLI, name, label="ci", days=days, scope=scope)
    return basic(name, secret)


async def _lock(world: World, headers: dict[str, str], path: str = "a.psd") -> Any:
    return await world.client.post(
        "/acme/game.git/info/lfs/locks", json={"path": path}, headers={**LFS_HEADERS, **headers}
    )


async def test_a_read_only_token_downloads_but_never_uploads_or_locks(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    await admin.grant(CLI, GAME, "alice", Permission.ADMIN)
    stored = blob(10)
    await fresh.push("acme/game", [stored], fresh.auth("root"))
    reader = await _token(fresh, "alice", Scope.READ)
    assert await fresh.fetch("acme/game", stored, reader) == stored.data
    await lfs_error(await fresh.batch("acme/game", "upload", [blob(11).spec()], reader), 403)
    await lfs_error(await _lock(fresh, reader), 403)
    # A server admin's read-only token is read-only too.
    root_reader = await _token(fresh, "root", Scope.READ)
    await lfs_error(await fresh.batch("acme/game", "upload", [blob(12).spec()], root_reader), 403)
    writer = await _token(fresh, "alice", Scope.WRITE)
    assert (await _lock(fresh, writer)).status == 201


async def test_expired_and_revoked_tokens_answer_401_like_a_wrong_one(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    await admin.grant(CLI, GAME, "alice", Permission.WRITE)
    item = blob(10)
    headers = await _token(fresh, "alice", days=1)
    (listed,) = await admin.list_tokens(CLI, "alice")
    assert listed.expires_at is not None and listed.label == "ci"
    await fresh.batch_ok("acme/game", "upload", [item], headers)
    async with fresh.meta.db.transaction() as conn:
        await conn.execute(update(tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = await lfs_error(await fresh.batch("acme/game", "upload", [item.spec()], headers), 401)
    wrong = await lfs_error(
        await fresh.batch("acme/game", "upload", [item.spec()], basic("alice", "lfsd_" + "x" * 43)), 401
    )
    assert expired["message"] == wrong["message"]

    headers = await _token(fresh, "alice")
    (obj,) = await fresh.batch_ok("acme/game", "upload", [item], headers)
    link = obj["actions"]["upload"]
    active = (await admin.list_tokens(CLI, "alice"))[-1]  # the expired one is listed too
    await admin.revoke_token(CLI, active.id)
    await lfs_error(await fresh.batch("acme/game", "upload", [item.spec()], headers), 401)
    # The link handed out before the revocation stops too.
    response = await fresh.client.session.put(link["href"], data=item.data, headers=link["header"])
    assert response.status == 401


async def test_disable_enable_revoke_grant_and_delete_user_take_effect_at_the_next_request(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password="pass word")
    await admin.grant(CLI, GAME, "alice", Permission.WRITE)
    by_token = await _token(fresh, "alice")
    by_password = basic("alice", "pass word")
    item = blob(10)
    for headers in (by_token, by_password):
        await fresh.batch_ok("acme/game", "upload", [item], headers)
    (obj,) = await fresh.batch_ok("acme/game", "upload", [item], by_token)
    link = obj["actions"]["upload"]

    await admin.set_disabled(CLI, "alice", True)
    for headers in (by_token, by_password):
        await lfs_error(await fresh.batch("acme/game", "upload", [item.spec()], headers), 401)
    assert (await fresh.client.session.put(link["href"], data=item.data, headers=link["header"])).status == 401
    await admin.set_disabled(CLI, "alice", False)
    await fresh.batch_ok("acme/game", "upload", [item], by_token)

    await admin.revoke(CLI, GAME, "alice")
    await lfs_error(await fresh.batch("acme/game", "upload", [item.spec()], by_token), 404)
    with pytest.raises(NotFound):
        await admin.revoke(CLI, GAME, "alice")

    await admin.grant(CLI, GAME, "alice", Permission.WRITE)
    assert (await _lock(fresh, by_token)).status == 201
    await admin.delete_user(CLI, "alice")
    await lfs_error(await fresh.batch("acme/game", "upload", [item.spec()], by_token), 401)
    # The lock stays, shown as owned by the deleted user, until forced open; the name is free again.
    listed = await fresh.client.get("/acme/game.git/info/lfs/locks", headers={**LFS_HEADERS, **fresh.auth("root")})
    (lock,) = (await listed.json(content_type=None))["locks"]
    assert lock["owner"]["name"].startswith("alice (deleted #")
    assert [user.name for user in await admin.list_users(CLI)] == ["root"]
    assert await admin.grants(CLI, GAME) == []
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    forced = await fresh.client.post(
        f"/acme/game.git/info/lfs/locks/{lock['id']}/unlock",
        json={"force": True},
        headers={**LFS_HEADERS, **fresh.auth("root")},
    )
    assert forced.status == 200
    (entry,) = await admin.audit(CLI, AuditQuery(action="lock.force_unlock"))
    assert entry.actor == "root" and entry.outcome is Outcome.OK and entry.details["owner"] == lock["owner"]["name"]


async def test_rename_moves_objects_locks_and_grants_and_the_old_path_is_404(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    await admin.grant(CLI, GAME, "alice", Permission.WRITE)
    headers = await _token(fresh, "alice")
    items = [blob(10), blob(2000)]
    await fresh.push("acme/game", items, headers)
    assert (await _lock(fresh, headers)).status == 201
    (info,) = await admin.list_repos(CLI)
    assert (info.objects, info.bytes) == (2, 2010) and info.last_push is not None

    await admin.rename_repo(CLI, GAME, RepoPath("studio/game"))
    await lfs_error(await fresh.batch("acme/game", "download", [items[0].spec()], headers), 404)
    assert await fresh.fetch("studio/game", items[1], headers) == items[1].data
    moved = await fresh.client.get("/studio/game.git/info/lfs/locks", headers={**LFS_HEADERS, **headers})
    assert len((await moved.json(content_type=None))["locks"]) == 1
    await admin.create_repo(CLI, RepoPath("acme/other"), public=False)
    with pytest.raises(Conflict, match="already exists"):
        await admin.rename_repo(CLI, RepoPath("studio/game"), RepoPath("acme/other"))

    await admin.delete_repo(CLI, RepoPath("studio/game"))
    await lfs_error(await fresh.batch("studio/game", "download", [items[0].spec()], fresh.auth("root")), 404)
    # Its links to objects are gone (the bytes stay for the collector).
    await admin.create_repo(CLI, GAME, public=False)
    (gone,) = await fresh.batch_ok("acme/game", "download", [items[0]], fresh.auth("root"))
    assert gone["error"]["code"] == 404


async def test_only_admins_administer_users_manage_their_own_tokens_and_refusals_are_audited(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    await admin.add_user(CLI, "bob", is_admin=False, password=None)
    alice = await fresh.meta.users.require("alice")
    as_alice = Actor(name="alice", user_id=alice.id, is_admin=False, address="192.0.2.7")
    _, secret = await admin.create_token(as_alice, "alice", label="laptop")
    (own,) = await admin.list_tokens(as_alice, "alice")
    with pytest.raises(Forbidden):
        await admin.list_tokens(as_alice, "bob")
    _, bobs = await admin.create_token(CLI, "bob")
    (bob_token,) = await admin.list_tokens(CLI, "bob")
    with pytest.raises(Forbidden):
        await admin.revoke_token(as_alice, bob_token.id)
    with pytest.raises(Forbidden):
        await admin.set_disabled(as_alice, "bob", True)
    await admin.revoke_token(as_alice, own.id)
    assert await fresh.meta.users.identity_for_token(bobs) is not None

    entries = await admin.audit(CLI, AuditQuery(actor="alice"))
    assert [(e.action, e.outcome) for e in entries] == [
        ("token.revoke", Outcome.OK),
        ("user.disable", Outcome.DENIED),
        ("token.revoke", Outcome.DENIED),
        ("token.list", Outcome.DENIED),
        ("token.create", Outcome.OK),
    ]
    assert all(e.address == "192.0.2.7" for e in entries)
    # Never a secret: not the tokens, not the password.
    async with fresh.meta.db.transaction() as conn:
        rows = (await conn.execute(select(audit.c.details, audit.c.target, audit.c.actor))).all()
    dumped = json.dumps([list(row) for row in rows])
    assert secret not in dumped and bobs not in dumped
    grouped = await admin.audit(CLI, AuditQuery(action="token", limit=3))
    assert [(e.action, e.actor) for e in grouped] == [
        ("token.revoke", "alice"),
        ("token.revoke", "alice"),
        ("token.create", "cli:operator"),
    ]


async def test_token_expiry_is_bounded_by_the_server_maximum(fresh: World) -> None:
    admin = _admin(fresh.meta, token_max_days=30)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    with pytest.raises(BadRequest, match="at most 30 days"):
        await admin.create_token(CLI, "alice", days=31)
    info, _ = await admin.create_token(CLI, "alice")
    assert info.expires_at is not None
    assert timedelta(days=29) < info.expires_at - datetime.now(UTC) <= timedelta(days=30)
    entries = await admin.audit(CLI, AuditQuery(action="token.create"))
    assert [(e.outcome, e.details.get("error")) for e in entries] == [
        (Outcome.OK, None),
        (Outcome.FAILED, "tokens on this server expire after at most 30 days"),
    ]


async def test_last_use_is_written_at_most_once_a_minute(fresh: World) -> None:
    admin = _admin(fresh.meta)
    await admin.add_user(CLI, "alice", is_admin=False, password=None)
    _, secret = await admin.create_token(CLI, "alice")
    (before,) = await admin.list_tokens(CLI, "alice")
    assert before.last_used_at is None
    assert await fresh.meta.users.identity_for_token(secret) is not None
    (first,) = await admin.list_tokens(CLI, "alice")
    assert first.last_used_at is not None
    assert await fresh.meta.users.identity_for_token(secret) is not None
    (second,) = await admin.list_tokens(CLI, "alice")
    assert second.last_used_at == first.last_used_at
    (user,) = [u for u in await admin.list_users(CLI) if u.name == "alice"]
    assert user.last_active_at is not None
