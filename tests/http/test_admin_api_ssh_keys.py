"""SSH keys through the admin API on every database: a user's own keys, anyone's for server admins, removal by id,
one key for one user, weak or malformed keys refused, and each change audited without the key itself."""

from __future__ import annotations

from lfsd.core.audit import AuditQuery, Outcome
from lfsd.core.tokens import Scope
from tests.http.admin_api_support import bearer, ok
from tests.support import World, lfs_error

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo alice@laptop"
OTHER = ED25519.replace("IBPm", "IBPn")
DSA = "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7 x"


async def test_users_add_list_and_remove_their_own_keys(world: World) -> None:
    alice = await world.user("alice")
    client = world.client
    made = await client.post("/api/v1/user/ssh-keys", json={"key": ED25519}, headers=alice)
    key = await ok(made, 201, "SshKey")
    assert made.headers["Location"] == f"/api/v1/ssh-keys/{key['id']}"
    assert (key["user"], key["type"], key["label"]) == ("alice", "ssh-ed25519", "alice@laptop")
    assert key["fingerprint"].startswith("SHA256:") and key["last_used_at"] is None
    second = await ok(
        await client.post("/api/v1/users/alice/ssh-keys", json={"key": OTHER, "label": "ci"}, headers=alice),
        201,
        "SshKey",
    )
    listed = await ok(await client.get("/api/v1/user/ssh-keys", headers=alice), schema="SshKeyList")
    assert [(k["id"], k["label"]) for k in listed["ssh_keys"]] == [(key["id"], "alice@laptop"), (second["id"], "ci")]
    assert ED25519.split()[1] not in str(listed)
    same = await ok(await client.get("/api/v1/users/alice/ssh-keys", headers=alice))
    assert same == listed

    await ok(await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=alice), 204)
    # A key id that is not one's own, or no longer exists, says nothing about other users' keys.
    await lfs_error(await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=alice), 403)
    left = await ok(await client.get("/api/v1/user/ssh-keys", headers=alice))
    assert [k["id"] for k in left["ssh_keys"]] == [second["id"]]

    entries = await world.meta.audit.entries(AuditQuery(action="sshkey"))
    assert [(e.action, e.outcome) for e in reversed(entries)] == [
        ("sshkey.add", Outcome.OK),
        ("sshkey.add", Outcome.OK),
        ("sshkey.remove", Outcome.OK),
        ("sshkey.remove", Outcome.DENIED),
    ]
    assert all(ED25519.split()[1] not in str(e.details) for e in entries)


async def test_one_key_one_user_and_bad_keys_are_refused(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    client = world.client
    await ok(await client.post("/api/v1/user/ssh-keys", json={"key": ED25519}, headers=alice), 201)
    await lfs_error(await client.post("/api/v1/user/ssh-keys", json={"key": ED25519}, headers=bob), 409)
    await lfs_error(await client.post("/api/v1/user/ssh-keys", json={"key": ED25519}, headers=alice), 409)
    for bad in ("", "not a key", DSA, "ssh-ed25519 !!!!", 'command="x" ' + OTHER):
        await lfs_error(await client.post("/api/v1/user/ssh-keys", json={"key": bad}, headers=bob), 400)
    await lfs_error(await client.post("/api/v1/user/ssh-keys", json={"key": OTHER, "label": "a\nb"}, headers=bob), 400)
    for body in ({}, {"key": 1}, {"key": OTHER, "extra": True}, {"key": OTHER, "label": "x" * 101}):
        await lfs_error(await client.post("/api/v1/user/ssh-keys", json=body, headers=bob), 422)
    await lfs_error(await client.post("/api/v1/user/ssh-keys", data=OTHER, headers=bob), 415)
    assert (await ok(await client.get("/api/v1/user/ssh-keys", headers=bob)))["ssh_keys"] == []


async def test_others_keys_need_a_server_admin_with_an_admin_token(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    root = await bearer(world.meta, "root")
    root_write = await bearer(world.meta, "root", Scope.WRITE)
    client = world.client
    key = await ok(await client.post("/api/v1/users/alice/ssh-keys", json={"key": ED25519}, headers=root), 201)
    assert key["user"] == "alice"

    await lfs_error(await client.get("/api/v1/users/alice/ssh-keys"), 401)
    await lfs_error(await client.get("/api/v1/users/alice/ssh-keys", headers=bob), 403)
    await lfs_error(await client.get("/api/v1/users/alice/ssh-keys", headers=root_write), 403)
    await lfs_error(await client.post("/api/v1/users/alice/ssh-keys", json={"key": OTHER}, headers=bob), 403)
    await lfs_error(await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=bob), 403)
    await lfs_error(await client.get("/api/v1/users/nobody/ssh-keys", headers=root), 404)
    for bad_id in ("0", "x", "99999999999", "-1"):
        await lfs_error(await client.delete(f"/api/v1/ssh-keys/{bad_id}", headers=root), 404)

    listed = await ok(await client.get("/api/v1/users/alice/ssh-keys", headers=root))
    assert [k["id"] for k in listed["ssh_keys"]] == [key["id"]]
    await ok(await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=root), 204)
    await lfs_error(await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=root), 404)
    assert (await ok(await client.get("/api/v1/user/ssh-keys", headers=alice)))["ssh_keys"] == []
    denied = {(e.actor, e.action) for e in await world.meta.audit.entries(AuditQuery()) if e.outcome is Outcome.DENIED}
    assert {("bob", "sshkey.list"), ("root", "sshkey.list"), ("bob", "sshkey.add"), ("bob", "sshkey.remove")} <= denied
