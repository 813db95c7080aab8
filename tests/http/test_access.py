"""Who may do what: authentication schemes, grants, public repositories and isolation between repositories."""

from __future__ import annotations

import base64
import time

import pytest

from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.http.keys import SIGNER
from tests.support import World, basic, blob, lfs_error


async def test_anonymous_on_private_repo_gets_401_with_lfs_authenticate(world: World) -> None:
    await world.repo("acme/game")
    response = await world.batch("acme/game", "download", [blob(1).spec()])
    await lfs_error(response, 401)
    assert response.headers["LFS-Authenticate"].startswith("Basic ")


async def test_unknown_repo_anonymous_is_401_not_404(world: World) -> None:
    response = await world.batch("no/such", "download", [])
    await lfs_error(response, 401)


@pytest.mark.parametrize(
    "header",
    [
        basic("root", "lfsd_" + "x" * 43),
        basic("root", "wrong-password"),
        basic("nobody", "secret"),
        {"Authorization": "Bearer lfsd_" + "y" * 43},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Digest abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic " + "A" * 5000},
    ],
)
async def test_bad_credentials_are_401(world: World, header: dict[str, str]) -> None:
    await world.repo("acme/game", public=True)
    response = await world.batch("acme/game", "download", [], header)
    await lfs_error(response, 401)


async def test_password_and_bearer_work(world: World) -> None:
    await world.user("carol", password="correct horse")
    await world.repo("acme/game", grants={"carol": "read"})
    assert (await world.batch("acme/game", "download", [], basic("carol", "correct horse"))).status == 200
    bearer = {"Authorization": f"Bearer {world.tokens['carol']}"}
    assert (await world.batch("acme/game", "download", [], bearer)).status == 200
    await lfs_error(await world.batch("acme/game", "download", [], basic("carol", "wrong")), 401)


async def test_token_of_another_user_name_fails(world: World) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.repo("acme/game", grants={"alice": "read", "bob": "read"})
    response = await world.batch("acme/game", "download", [], basic("bob", world.tokens["alice"]))
    await lfs_error(response, 401)


async def test_revoked_token_and_disabled_user(world: World) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.repo("acme/game", grants={"alice": "read", "bob": "read"})
    await world.meta.users.revoke_token(world.tokens["alice"])
    await lfs_error(await world.batch("acme/game", "download", [], world.auth("alice")), 401)
    await world.meta.users.set_disabled("bob", True)
    await lfs_error(await world.batch("acme/game", "download", [], world.auth("bob")), 401)


async def test_grants(world: World) -> None:
    await world.user("reader")
    await world.user("writer")
    await world.user("stranger")
    await world.repo("acme/game", grants={"reader": "read", "writer": "write"})
    item = blob(10)
    assert (await world.batch("acme/game", "download", [item.spec()], world.auth("reader"))).status == 200
    await lfs_error(await world.batch("acme/game", "upload", [item.spec()], world.auth("reader")), 403)
    assert (await world.batch("acme/game", "upload", [item.spec()], world.auth("writer"))).status == 200
    await lfs_error(await world.batch("acme/game", "download", [item.spec()], world.auth("stranger")), 404)
    await lfs_error(await world.batch("acme/game", "upload", [item.spec()], world.auth("stranger")), 404)


async def test_public_repo_allows_anonymous_download_only(world: World) -> None:
    await world.repo("acme/open", public=True)
    item = blob(10)
    await world.push("acme/open", [item], world.auth("root"))
    assert await world.fetch("acme/open", item, {}) == item.data
    await lfs_error(await world.batch("acme/open", "upload", [blob(3).spec()]), 401)


async def test_objects_are_isolated_between_repositories(world: World) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.repo("alice/a", grants={"alice": "write"})
    await world.repo("bob/b", grants={"bob": "write"})
    secret = blob(1234)
    await world.push("alice/a", [secret], world.auth("alice"))

    (obj,) = await world.batch_ok("bob/b", "download", [secret], world.auth("bob"))
    assert obj["error"]["code"] == 404
    # Bob cannot read alice/a, so his upload is not short-cut: he must send (and prove) the bytes.
    (obj,) = await world.batch_ok("bob/b", "upload", [secret], world.auth("bob"))
    assert "upload" in obj["actions"]
    # A download link for alice/a does not open bob/b.
    (alice_obj,) = await world.batch_ok("alice/a", "download", [secret], world.auth("alice"))
    href = alice_obj["actions"]["download"]["href"].replace("/alice/a.git/", "/bob/b.git/")
    response = await world.client.session.get(href, headers=alice_obj["actions"]["download"]["header"])
    await lfs_error(response, 401)
    # Bob's own credentials on alice's href: 404, as if it did not exist.
    response = await world.client.session.get(alice_obj["actions"]["download"]["href"], headers=world.auth("bob"))
    await lfs_error(response, 404)
    # Bob's credentials on his own repository's href for that oid: 404 too.
    response = await world.client.session.get(href, headers=world.auth("bob"))
    await lfs_error(response, 404)


async def test_upload_linked_without_transfer_when_caller_can_read_a_holder(world: World) -> None:
    await world.user("alice")
    await world.repo("acme/a", grants={"alice": "write"})
    await world.repo("acme/b", grants={"alice": "write"})
    item = blob(999)
    await world.push("acme/a", [item], world.auth("alice"))
    (obj,) = await world.batch_ok("acme/b", "upload", [item], world.auth("alice"))
    assert "actions" not in obj and "error" not in obj
    assert await world.fetch("acme/b", item, world.auth("alice")) == item.data


async def test_upload_by_proof_links_object_for_second_repo(world: World) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.repo("alice/a", grants={"alice": "write"})
    await world.repo("bob/b", grants={"bob": "write"})
    item = blob(4321)
    await world.push("alice/a", [item], world.auth("alice"))
    await world.push("bob/b", [item], world.auth("bob"))
    assert await world.fetch("bob/b", item, world.auth("bob")) == item.data


async def test_links_are_bound_to_operation_and_expire(world: World) -> None:
    await world.repo("acme/game")
    item = blob(50)
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    upload = obj["actions"]["upload"]
    # An upload link cannot download.
    await lfs_error(await world.client.session.get(upload["href"], headers=upload["header"]), 401)
    # An expired link fails.
    signer = world.client.app[SIGNER]
    repo = await world.meta.repos.find(RepoPath("acme/game"))
    assert repo is not None
    stale = signer.sign(
        repo.path, Oid(item.oid), Operation.UPLOAD, user_id=1, repo_id=repo.id, size=50, now=int(time.time()) - 7200
    )
    response = await world.client.session.put(
        upload["href"], data=item.data, headers={"Authorization": f"LFSD-Link {stale}"}
    )
    body = await lfs_error(response, 401)
    assert "expired" in body["message"]
    # A link for one oid does not accept another oid.
    other = blob(50)
    href = upload["href"].replace(item.oid, other.oid)
    await lfs_error(await world.client.session.put(href, data=other.data, headers=upload["header"]), 401)
