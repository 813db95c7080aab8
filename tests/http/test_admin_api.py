"""The admin HTTP API on every database: the main flows, who may call it, and what the audit log keeps."""

from __future__ import annotations

from typing import Any

from lfsd.core.audit import AuditQuery, Outcome
from lfsd.core.auth import Permission
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope
from lfsd.http.errors import AUTHENTICATE_HEADER
from tests.http.admin_api_support import CLI, administration, bearer, ok
from tests.support import LFS_HEADERS, World, basic, blob, lfs_error


async def test_users_are_added_listed_by_page_changed_and_deleted(world: World) -> None:
    root = await bearer(world.meta, "root")
    client = world.client
    for name in ("carol", "alice", "bob"):
        made = await ok(await client.post("/api/v1/users", json={"name": name}, headers=root), 201, "User")
        assert made["name"] == name and made["admin"] is False and made["password"] is False
    first = await ok(await client.get("/api/v1/users?limit=2", headers=root), schema="UserList")
    assert [u["name"] for u in first["users"]] == ["alice", "bob"]
    second = await ok(
        await client.get("/api/v1/users", params={"limit": "2", "cursor": first["next_cursor"]}, headers=root)
    )
    assert [u["name"] for u in second["users"]] == ["carol", "root"]
    assert "next_cursor" not in second

    changed = await ok(
        await client.patch(
            "/api/v1/users/bob", json={"disabled": True, "admin": True, "password": "s3cret!"}, headers=root
        ),
        schema="User",
    )
    assert changed["disabled"] is True and changed["admin"] is True and changed["password"] is True
    await ok(await client.delete("/api/v1/users/bob", headers=root), 204)
    await lfs_error(await client.get("/api/v1/users/bob", headers=root), 404)
    await lfs_error(await client.post("/api/v1/users", json={"name": "alice"}, headers=root), 409)
    await lfs_error(await client.post("/api/v1/users", json={"name": "a:b"}, headers=root), 422)
    # Any valid name is addressable, percent-encoded.
    made = await client.post("/api/v1/users", json={"name": "r&d/ops lead"}, headers=root)
    assert made.headers["Location"] == "/api/v1/users/r%26d%2Fops%20lead"
    shown = await ok(await client.get(made.headers["Location"], headers=root), schema="User")
    assert shown["name"] == "r&d/ops lead"


async def test_anonymous_callers_get_401_and_non_admin_callers_403_which_is_audited(world: World) -> None:
    client = world.client
    anonymous = await client.get("/api/v1/users")
    await lfs_error(anonymous, 401)
    assert anonymous.headers["WWW-Authenticate"] == AUTHENTICATE_HEADER
    await lfs_error(await client.get("/api/v1/users", headers={"Authorization": "Bearer lfsd_" + "x" * 43}), 401)

    # A server admin's write token (not admin scope) and a plain user's token are refused, and both are recorded.
    refused = await client.get("/api/v1/repos", headers={**world.auth("root"), "X-Request-Id": "req-12345678"})
    body = await lfs_error(refused, 403)
    assert body["request_id"] == "req-12345678"
    await world.user("alice")
    await lfs_error(await client.delete("/api/v1/users/root", headers=world.auth("alice")), 403)
    # Refused before the body is read: 403 whatever it holds, and recorded with what the path names.
    bad_body = {**world.auth("alice"), "Content-Type": "application/json"}
    await lfs_error(await client.post("/api/v1/users", data=b"{", headers=bad_body), 403)
    await lfs_error(await client.patch("/api/v1/repos/acme/game", data=b"[]", headers=bad_body), 403)
    await world.user("boss", admin=True, password="boss-pass")
    await lfs_error(await client.get("/api/v1/audit", headers=basic("boss", "boss-pass")), 403)
    entries = await world.meta.audit.entries(AuditQuery())
    denied = {(e.actor, e.action) for e in entries if e.outcome is Outcome.DENIED}
    assert {("root", "repo.list"), ("alice", "user.delete"), ("boss", "audit.list")} <= denied
    assert {("alice", "user.add", "*"), ("alice", "repo.change", "repo:acme/game")} <= {
        (e.actor, e.action, e.target) for e in entries if e.outcome is Outcome.DENIED
    }
    assert all(e.address for e in entries)


async def test_tokens_are_created_once_listed_and_revoked_by_their_owner(world: World) -> None:
    root = await bearer(world.meta, "root")
    client = world.client
    await ok(await client.post("/api/v1/users", json={"name": "alice", "password": "old-pass"}, headers=root), 201)
    made = await ok(
        await client.post(
            "/api/v1/users/alice/tokens", json={"label": "laptop", "expires_days": 30, "scope": "read"}, headers=root
        ),
        201,
        "CreatedToken",
    )
    assert made["token"]["scopes"] == ["read"] and made["token"]["expires_at"] is not None
    alice = basic("alice", made["secret"])
    own = await ok(await client.get("/api/v1/user/tokens", headers=alice), schema="TokenList")
    assert [t["label"] for t in own["tokens"]] == ["laptop"]
    assert made["secret"] not in str(own)
    # Users make their own tokens, never one with the admin scope; nor may they list anyone's.
    second = await ok(
        await client.post("/api/v1/user/tokens", json={"label": "ci"}, headers=alice), 201, "CreatedToken"
    )
    # The same, by name: the core decides that these are alice's own.
    mine = await ok(await client.get("/api/v1/users/alice/tokens", headers=alice), schema="TokenList")
    assert [t["label"] for t in mine["tokens"]] == ["laptop", "ci"]
    await lfs_error(await client.post("/api/v1/user/tokens", json={"scope": "admin"}, headers=alice), 400)
    await lfs_error(await client.get("/api/v1/users/root/tokens", headers=alice), 403)
    # Their own token revoked by id: it answers 401 at once, like a wrong one.
    await ok(await client.delete(f"/api/v1/tokens/{made['token']['id']}", headers=alice), 204)
    await lfs_error(await client.get("/api/v1/user/tokens", headers=alice), 401)
    ci = basic("alice", second["secret"])
    await lfs_error(await client.delete(f"/api/v1/tokens/{made['token']['id']}", headers=ci), 404)
    paged = await ok(await client.get("/api/v1/users/root/tokens?limit=1", headers=root), schema="TokenList")
    assert len(paged["tokens"]) == 1 and "next_cursor" in paged
    # Someone else's token: 403, whether or not it exists.
    await lfs_error(await client.delete(f"/api/v1/tokens/{paged['tokens'][0]['id']}", headers=ci), 403)
    revoked = await ok(await client.delete("/api/v1/users/alice/tokens", headers=root), schema="Revoked")
    assert revoked == {"revoked": 1}
    await lfs_error(await client.get("/api/v1/user/tokens", headers=ci), 401)


async def test_a_user_changes_their_own_password_with_the_current_one(world: World) -> None:
    await world.user("alice", password="old-pass")
    client = world.client
    old = basic("alice", "old-pass")
    wrong = {"current_password": "nope", "new_password": "new-pass"}
    await lfs_error(await client.put("/api/v1/user/password", json=wrong, headers=world.auth("alice")), 403)
    # A token is not the current password.
    token = {"current_password": world.tokens["alice"], "new_password": "new-pass"}
    await lfs_error(await client.put("/api/v1/user/password", json=token, headers=world.auth("alice")), 403)
    right = {"current_password": "old-pass", "new_password": "new-pass"}
    await ok(await client.put("/api/v1/user/password", json=right, headers=old), 204)
    await lfs_error(await client.get("/api/v1/user/tokens", headers=old), 401)
    await ok(await client.get("/api/v1/user/tokens", headers=basic("alice", "new-pass")))
    entries = await world.meta.audit.entries(AuditQuery(action="user.passwd"))
    assert [e.outcome for e in entries] == [Outcome.OK, Outcome.FAILED, Outcome.FAILED]


async def test_repositories_grants_and_locks(world: World) -> None:
    root = await bearer(world.meta, "root")
    client = world.client
    await world.user("alice")
    made = await ok(await client.post("/api/v1/repos", json={"path": "acme/game.git"}, headers=root), 201, "Repo")
    assert made["path"] == "acme/game" and made["public"] is False and made["objects"] == 0
    await ok(await client.post("/api/v1/repos", json={"path": "acme/art/tools", "public": True}, headers=root), 201)
    await lfs_error(await client.post("/api/v1/repos", json={"path": "acme/game"}, headers=root), 409)
    await lfs_error(await client.post("/api/v1/repos", json={"path": "../etc"}, headers=root), 404)
    stored = [blob(100), blob(23)]
    await world.push("acme/game", stored, root)  # an admin-scope token writes too
    listed = await ok(await client.get("/api/v1/repos?limit=1", headers=root), schema="RepoList")
    assert [r["path"] for r in listed["repos"]] == ["acme/art/tools"]
    rest = await ok(await client.get(f"/api/v1/repos?cursor={listed['next_cursor']}", headers=root))
    assert [(r["path"], r["objects"], r["bytes"]) for r in rest["repos"]] == [("acme/game", 2, 123)]
    assert rest["repos"][0]["last_push"] is not None and "next_cursor" not in rest
    nested = await ok(await client.get("/api/v1/repos/acme/art/tools", headers=root), schema="Repo")
    assert nested["public"] is True

    grant = await ok(
        await client.put("/api/v1/repos/acme/game/-/grants/alice", json={"permission": "write"}, headers=root),
        schema="Grant",
    )
    assert grant == {"repo": "acme/game", "user": "alice", "permission": "write"}
    grants = await ok(await client.get("/api/v1/repos/acme/game/-/grants", headers=root), schema="GrantList")
    assert grants["grants"] == [grant]
    of_alice = await ok(await client.get("/api/v1/users/alice/grants", headers=root), schema="GrantList")
    assert of_alice["grants"] == [grant]

    lock = await client.post(
        "/acme/game.git/info/lfs/locks", json={"path": "a.psd"}, headers={**LFS_HEADERS, **world.auth("alice")}
    )
    assert lock.status == 201
    locks = await ok(await client.get("/api/v1/repos/acme/game/-/locks", headers=root), schema="LockList")
    (listed_lock,) = locks["locks"]
    assert listed_lock["owner"] == {"name": "alice"}
    await ok(await client.delete(f"/api/v1/repos/acme/game/-/locks/{listed_lock['id']}", headers=root), 204)
    await lfs_error(await client.delete(f"/api/v1/repos/acme/game/-/locks/{listed_lock['id']}", headers=root), 404)

    moved = await ok(
        await client.patch(
            "/api/v1/repos/acme/game", json={"path": "studio/game", "public": True, "locking": False}, headers=root
        ),
        schema="Repo",
    )
    assert (moved["path"], moved["public"], moved["locking"]) == ("studio/game", True, False)
    await lfs_error(await client.get("/api/v1/repos/acme/game", headers=root), 404)
    moved_grants = await ok(await client.get("/api/v1/repos/studio/game/-/grants", headers=root))
    assert [g["user"] for g in moved_grants["grants"]] == ["alice"]
    await ok(await client.delete("/api/v1/repos/studio/game/-/grants/alice", headers=root), 204)
    await lfs_error(await client.delete("/api/v1/repos/studio/game/-/grants/alice", headers=root), 404)
    await ok(await client.delete("/api/v1/repos/studio/game", headers=root), 204)
    await lfs_error(await client.get("/api/v1/repos/studio/game", headers=root), 404)
    assert await world.meta.repos.find(RepoPath("studio/game")) is None


async def test_the_audit_log_is_listed_by_page_and_filtered(world: World) -> None:
    root = await bearer(world.meta, "root")
    admin = administration(world.meta)
    for name in ("u1", "u2", "u3"):
        await admin.add_user(CLI, name, is_admin=False, password=None)
    await admin.create_repo(CLI, RepoPath("acme/game"), public=False)
    await admin.grant(CLI, RepoPath("acme/game"), "u1", Permission.READ)
    first = await ok(await world.client.get("/api/v1/audit?action=user&limit=2", headers=root), schema="AuditList")
    assert [e["target"] for e in first["entries"]] == ["user:u3", "user:u2"]
    rest = await ok(
        await world.client.get("/api/v1/audit", params={"action": "user", "cursor": first["next_cursor"]}, headers=root)
    )
    assert [e["target"] for e in rest["entries"]][:1] == ["user:u1"]
    by_actor = await ok(
        await world.client.get("/api/v1/audit", params={"actor": CLI.name, "action": "repo"}, headers=root)
    )
    assert [e["action"] for e in by_actor["entries"]] == ["repo.grant", "repo.create"]
    await lfs_error(await world.client.get("/api/v1/audit?since=yesterday", headers=root), 422)


async def test_bad_input_gets_a_clear_error(world: World) -> None:
    root = await bearer(world.meta, "root")
    client = world.client
    json_headers = {**root, "Content-Type": "application/json"}
    cases: list[tuple[str, str, Any, int, str]] = [
        ("post", "/api/v1/users", b"{", 400, "malformed JSON"),
        ("post", "/api/v1/users", b'{"name": "a", "admn": true}', 422, "admn"),
        ("post", "/api/v1/users", b'{"name": 5}', 422, "name"),
        ("post", "/api/v1/users", b'{"name": "a", "admin": "yes"}', 422, "admin"),
        ("patch", "/api/v1/users/root", b"{}", 422, "nothing to change"),
        ("post", "/api/v1/users/root/tokens", b'{"scope": "root"}', 422, "scope"),
        ("post", "/api/v1/users/root/tokens", b'{"expires_days": 0}', 422, "expires_days"),
        ("get", "/api/v1/users?cursor=bm9wZQ", None, 422, "cursor"),
        ("get", "/api/v1/users?limit=0", None, 422, "limit"),
        ("get", "/api/v1/users?limit=x", None, 422, "limit"),
        ("delete", "/api/v1/tokens/abc", None, 404, "token"),
        ("delete", "/api/v1/tokens/99999999999", None, 404, "token"),
        ("delete", "/api/v1/tokens/2147483648", None, 404, "token"),
        ("get", "/api/v1/audit?cursor=WzEwOTk1MTE2Mjc3NzZd", None, 422, "cursor"),  # [2**40]
        ("get", "/api/v1/users/root/tokens?cursor=WyIxIl0", None, 422, "cursor"),  # ["1"]
        ("get", "/api/v1/repos?cursor=WyIuLi94Il0", None, 422, "cursor"),  # ["../x"]
        ("get", "/api/v1/users?cursor=WyJhXHUwMDAwIl0", None, 422, "cursor"),  # ["a\u0000"]
        ("get", "/api/v1/users/root/grants?cursor=WyJhY21lL2dhbWUiXQ", None, 422, "cursor"),  # one part of two
        ("post", "/api/v1/users", b"x" * 70_000, 413, "limited"),
    ]
    for method, path, data, status, words in cases:
        response = await client.request(method, path, data=data, headers=json_headers)
        body = await lfs_error(response, status)
        assert words in body["message"], (path, data, body)
    wrong_type = await client.post(
        "/api/v1/users", data=b'{"name": "a"}', headers={**root, "Content-Type": "text/plain"}
    )
    await lfs_error(wrong_type, 415)
    # An admin-scope token only for server admins, through the API as through the command line.
    await world.user("alice")
    await lfs_error(await client.post("/api/v1/users/alice/tokens", json={"scope": "admin"}, headers=root), 400)
    assert (await bearer(world.meta, "root"))["Authorization"].startswith("Bearer ")
    read_only = await bearer(world.meta, "root", Scope.READ)
    await lfs_error(await client.get("/api/v1/users", headers=read_only), 403)


async def test_grants_are_paged_by_repository_then_user(world: World) -> None:
    root = await bearer(world.meta, "root")
    admin = administration(world.meta)
    for name in ("bob", "alice", "carol"):
        await admin.add_user(CLI, name, is_admin=False, password=None)
    for path in ("acme/b", "acme/a"):
        await admin.create_repo(CLI, RepoPath(path), public=False)
        for name in ("carol", "alice", "bob"):
            await admin.grant(CLI, RepoPath(path), name, Permission.READ)

    async def walk(path: str, size: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        params = {"limit": str(size)}
        while True:
            listed = await ok(await world.client.get(path, params=params, headers=root), schema="GrantList")
            seen += [(g["repo"], g["user"]) for g in listed["grants"]]
            if "next_cursor" not in listed:
                return seen
            assert len(listed["grants"]) == size
            params["cursor"] = listed["next_cursor"]

    assert await walk("/api/v1/repos/acme/a/-/grants", 2) == [("acme/a", n) for n in ("alice", "bob", "carol")]
    assert await walk("/api/v1/users/bob/grants", 1) == [("acme/a", "bob"), ("acme/b", "bob")]
    # A cursor names a position, not an offset: removing a grant already listed shifts nothing on the next page.
    first = await ok(await world.client.get("/api/v1/repos/acme/b/-/grants?limit=1", headers=root))
    await admin.revoke(CLI, RepoPath("acme/b"), "alice")
    rest = await ok(
        await world.client.get("/api/v1/repos/acme/b/-/grants", params={"cursor": first["next_cursor"]}, headers=root)
    )
    assert [g["user"] for g in first["grants"] + rest["grants"]] == ["alice", "bob", "carol"]
