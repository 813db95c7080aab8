"""Usage and quotas through the admin API on every database: what a repository and an owner hold, the daily
history, quotas set and cleared by server admins only, and the audit log keeping each change as ``lfsd quota set``
does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lfsd.core.audit import AuditQuery, Outcome
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope
from tests.http.admin_api_support import bearer, ok
from tests.support import World, blob, lfs_error


async def test_repository_and_owner_usage_follow_pushes(world: World) -> None:
    root = await bearer(world.meta, "root")
    await world.repo("acme/game")
    await world.repo("acme/tools")
    push = world.auth("root")
    shared = blob(700, b"s")
    await world.push("acme/game", [shared, blob(300, b"g")], push)
    await world.push("acme/tools", [shared], push)

    game = await ok(await world.client.get("/api/v1/repos/acme/game/-/usage", headers=root), schema="Usage")
    assert (game["path"], game["objects"], game["bytes"]) == ("acme/game", 2, 1000)
    assert game["quota_bytes"] is None and game["quota_source"] is None
    assert game["last_push"] is not None
    assert "history" not in game
    # A deduplicated object counts against each repository that holds it, and so against their owner twice.
    owner = await ok(await world.client.get("/api/v1/owners/acme/usage", headers=root), schema="Usage")
    assert (owner["owner"], owner["objects"], owner["bytes"]) == ("acme", 3, 1700)
    nobody = await ok(await world.client.get("/api/v1/owners/nobody/usage", headers=root), schema="Usage")
    assert (nobody["objects"], nobody["bytes"], nobody["last_push"]) == (0, 0, None)

    await lfs_error(await world.client.get("/api/v1/repos/acme/missing/-/usage", headers=root), 404)
    await lfs_error(await world.client.get("/api/v1/owners/bad..name!/usage", headers=root), 404)


async def test_history_has_one_entry_per_day_ending_today(world: World) -> None:
    root = await bearer(world.meta, "root")
    await world.repo("acme/game")
    await world.push("acme/game", [blob(100, b"a"), blob(50, b"b")], world.auth("root"))
    shown = await ok(await world.client.get("/api/v1/repos/acme/game/-/usage?days=3", headers=root), schema="Usage")
    history = shown["history"]
    today = datetime.now(UTC).date()
    assert [entry["day"] for entry in history] == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert history[-1] == {"day": today.isoformat(), "objects": 2, "bytes": 150}
    assert history[0] == {"day": (today - timedelta(days=2)).isoformat(), "objects": 0, "bytes": 0}
    for bad in ("0", "-1", "x", "3661", "99999999999999999999", ""):
        await lfs_error(await world.client.get(f"/api/v1/repos/acme/game/-/usage?days={bad}", headers=root), 422)


async def test_quotas_are_set_and_cleared_by_admins_and_audited(world: World) -> None:
    root = await bearer(world.meta, "root")
    await world.repo("acme/game")
    client = world.client
    shown = await ok(
        await client.put("/api/v1/repos/acme/game/-/quota", json={"quota_bytes": 1000}, headers=root), schema="Usage"
    )
    assert (shown["quota_bytes"], shown["quota_source"]) == (1000, "own")
    owner = await ok(await client.put("/api/v1/owners/acme/quota", json={"quota_bytes": 5000}, headers=root))
    assert (owner["owner"], owner["quota_bytes"], owner["quota_source"]) == ("acme", 5000, "own")

    # The quota holds at once for the LFS API: 507 before any byte.
    push = world.auth("root")
    await world.push("acme/game", [blob(600, b"a")], push)
    body = await lfs_error(await world.batch("acme/game", "upload", [blob(500, b"b").spec()], push), 507)
    assert "600 of 1000 bytes" in body["message"]

    await ok(await client.delete("/api/v1/repos/acme/game/-/quota", headers=root), 204)
    cleared = await ok(await client.get("/api/v1/repos/acme/game/-/usage", headers=root))
    assert cleared["quota_bytes"] is None
    await world.batch_ok("acme/game", "upload", [blob(500, b"b")], push)
    await ok(await client.delete("/api/v1/owners/acme/quota", headers=root), 204)
    assert (await ok(await client.get("/api/v1/owners/acme/usage", headers=root)))["quota_bytes"] is None

    for bad in ({"quota_bytes": 0}, {"quota_bytes": "10G"}, {"quota_bytes": 2**63}, {}, {"quota": 1}):
        await lfs_error(await client.put("/api/v1/repos/acme/game/-/quota", json=bad, headers=root), 422)
    await lfs_error(await client.put("/api/v1/repos/acme/nope/-/quota", json={"quota_bytes": 1}, headers=root), 404)

    entries = await world.meta.audit.entries(AuditQuery(action="quota.set"))
    done = [(e.target, e.outcome, e.details.get("quota_bytes")) for e in reversed(entries)]
    assert done == [
        ("acme/game", Outcome.OK, 1000),
        ("acme", Outcome.OK, 5000),
        ("acme/game", Outcome.OK, None),
        ("acme", Outcome.OK, None),
        ("acme/nope", Outcome.FAILED, 1),
    ]
    assert all(e.actor == "root" and e.address for e in entries)


async def test_only_server_admins_with_an_admin_token_see_usage_or_set_quotas(world: World) -> None:
    await world.repo("acme/game")
    await world.user("alice")
    await world.repo("alice/own", grants={"alice": "admin"})
    write = await bearer(world.meta, "root", Scope.WRITE)
    client = world.client
    await lfs_error(await client.get("/api/v1/repos/acme/game/-/usage"), 401)
    await lfs_error(await client.get("/api/v1/repos/alice/own/-/usage", headers=world.auth("alice")), 403)
    await lfs_error(await client.get("/api/v1/owners/acme/usage", headers=write), 403)
    refused = await client.put(
        "/api/v1/owners/alice/quota",
        data=b"{",
        headers={**world.auth("alice"), "Content-Type": "application/json"},
    )
    await lfs_error(refused, 403)  # before the body is read
    await lfs_error(await client.delete("/api/v1/repos/alice/own/-/quota", headers=world.auth("alice")), 403)
    entries = await world.meta.audit.entries(AuditQuery())
    denied = {(e.actor, e.action, e.target) for e in entries if e.outcome is Outcome.DENIED}
    assert {
        ("alice", "usage.show", "repo:alice/own"),
        ("root", "usage.show", "owner:acme"),
        ("alice", "quota.set", "owner:alice"),
        ("alice", "quota.set", "repo:alice/own"),
    } <= denied
    untouched = await world.meta.usage.repo_usage(RepoPath.parse("alice/own"))
    assert untouched is not None and untouched.quota_bytes is None
