"""Every caller x every operation, on a private and a public repository, against the rules written out below."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from lfsd.config import Settings
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.http.keys import SIGNER
from lfsd.http.media import LFS_JSON
from tests.support import LFS_HEADERS, Blob, World, basic, blob

CALLERS = ("anonymous", "reader", "writer", "repo_admin", "server_admin", "other", "disabled", "revoked")
LEVEL = {"reader": 1, "writer": 2, "repo_admin": 3, "server_admin": 3}
NEEDS = {
    "batch_download": 1,
    "batch_upload": 2,
    "get_href": 1,
    "put_href": 2,
    "verify": 2,
    "lock_create": 2,
    "lock_list": 1,
    "lock_verify": 2,
    "unlock_own_or_writers": 2,
    "force_unlock": 2,
}
SUCCESS = {"lock_create": 201, "verify": 404}  # verify: no direct uploads on local storage, but only after access


def expected(caller: str, operation: str, public: bool) -> int:
    if caller in ("disabled", "revoked"):
        return 401
    level = LEVEL.get(caller, 0)
    if public:
        level = max(level, 1)
    needed = NEEDS[operation]
    if level < needed:
        if caller == "anonymous":
            return 401
        return 403 if level >= 1 else 404
    if operation == "unlock_own_or_writers" and caller != "writer":
        return 403  # the lock is the writer's: others need force
    if operation == "force_unlock" and caller not in ("writer", "repo_admin", "server_admin"):
        return 403
    return SUCCESS.get(operation, 200)


@dataclass
class Scene:
    world: World
    repo: str
    stored: Blob
    lock_id: str

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller == "revoked":
            return basic("revoked", self.world.tokens["revoked"])
        if caller == "server_admin":
            return self.world.auth("root")
        return self.world.auth(caller)


async def _scene(world: World, public: bool) -> Scene:
    for name in ("reader", "writer", "repo_admin", "other", "disabled", "revoked"):
        await world.user(name)
    repo = "acme/open" if public else "acme/secret"
    await world.repo(repo, public=public, grants={"reader": "read", "writer": "write", "repo_admin": "admin"})
    await world.repo("other/place", grants={"other": "write"})
    await world.meta.users.set_disabled("disabled", True)
    await world.meta.users.revoke_token(world.tokens["revoked"])
    stored = blob(321)
    await world.push(repo, [stored], world.auth("writer"))
    response = await world.client.post(
        f"/{repo}.git/info/lfs/locks", json={"path": "art.psd"}, headers={**LFS_HEADERS, **world.auth("writer")}
    )
    lock_id = (await response.json(content_type=LFS_JSON))["lock"]["id"]
    return Scene(world, repo, stored, lock_id)


Op = Callable[[Scene, dict[str, str]], Awaitable[ClientResponse]]


def _batch(operation: str) -> Op:
    async def run(scene: Scene, headers: dict[str, str]) -> ClientResponse:
        return await scene.world.batch(scene.repo, operation, [scene.stored.spec()], headers)

    return run


async def _get_href(scene: Scene, headers: dict[str, str]) -> ClientResponse:
    return await scene.world.client.get(f"/{scene.repo}.git/info/lfs/objects/{scene.stored.oid}", headers=headers)


async def _put_href(scene: Scene, headers: dict[str, str]) -> ClientResponse:
    item = blob(77)
    return await scene.world.client.put(
        f"/{scene.repo}.git/info/lfs/objects/{item.oid}", data=item.data, headers=headers
    )


async def _verify(scene: Scene, headers: dict[str, str]) -> ClientResponse:
    return await scene.world.client.post(
        f"/{scene.repo}.git/info/lfs/objects/{scene.stored.oid}/verify",
        json={"oid": scene.stored.oid, "size": scene.stored.size},
        headers={**LFS_HEADERS, **headers},
    )


def _locks(method: str, suffix: str, body: Any) -> Op:
    async def run(scene: Scene, headers: dict[str, str]) -> ClientResponse:
        url = f"/{scene.repo}.git/info/lfs/locks{suffix.format(id=scene.lock_id)}"
        if method == "GET":
            return await scene.world.client.get(url, headers={"Accept": LFS_JSON, **headers})
        return await scene.world.client.post(url, json=body, headers={**LFS_HEADERS, **headers})

    return run


OPERATIONS: dict[str, Op] = {
    "batch_download": _batch("download"),
    "batch_upload": _batch("upload"),
    "get_href": _get_href,
    "put_href": _put_href,
    "verify": _verify,
    "lock_create": _locks("POST", "", {"path": "new.psd"}),
    "lock_list": _locks("GET", "", None),
    "lock_verify": _locks("POST", "/verify", {}),
    "unlock_own_or_writers": _locks("POST", "/{id}/unlock", {}),
    "force_unlock": _locks("POST", "/{id}/unlock", {"force": True}),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fsync=False, buffer_size=64 * 1024)


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("caller", CALLERS)
async def test_matrix(world: World, caller: str, operation: str, public: bool) -> None:
    scene = await _scene(world, public)
    response = await OPERATIONS[operation](scene, scene.headers(caller))
    want = expected(caller, operation, public)
    assert response.status == want, f"{caller} {operation} {'public' if public else 'private'}: {await response.text()}"
    if want >= 400:
        body = await response.json(content_type=LFS_JSON)
        assert body["message"] and body["request_id"]
    if want == 401:
        assert response.headers["LFS-Authenticate"] == response.headers["WWW-Authenticate"] == 'Basic realm="Git LFS"'


async def test_links_expired_forged_or_replayed_are_refused(world: World) -> None:
    scene = await _scene(world, public=False)
    await world.repo("acme/second", grants={"writer": "write"})
    item = blob(50)
    (obj,) = await world.batch_ok(scene.repo, "upload", [item], world.auth("writer"))
    upload = obj["actions"]["upload"]
    session = world.client.session

    async def status(method: str, href: str, headers: dict[str, str], data: bytes | None = None) -> int:
        async with session.request(method, href, data=data, headers=headers) as response:
            return response.status

    other_oid = blob(50).oid
    assert await status("PUT", upload["href"].replace(item.oid, other_oid), upload["header"], item.data) == 401
    assert await status("PUT", upload["href"].replace(scene.repo, "acme/second"), upload["header"], item.data) == 401
    assert await status("GET", upload["href"], upload["header"]) == 401  # an upload link does not download
    forged = dict(upload["header"], Authorization=upload["header"]["Authorization"][:-4] + "AAAA")
    assert await status("PUT", upload["href"], forged, item.data) == 401
    repo = await world.meta.repos.find(RepoPath(scene.repo))
    assert repo is not None
    stale = world.client.app[SIGNER].sign(
        repo.path, Oid(item.oid), Operation.UPLOAD, user_id=1, repo_id=repo.id, size=50, now=int(time.time()) - 3600
    )
    assert await status("PUT", upload["href"], {"Authorization": f"LFSD-Link {stale}"}, item.data) == 401
    assert await status("PUT", upload["href"], upload["header"], item.data) == 200  # the genuine link still works


async def test_an_object_of_repository_a_cannot_be_proved_to_exist_through_b(world: World) -> None:
    scene = await _scene(world, public=False)
    never = blob(321)
    through_b = []
    for item in (scene.stored, never):
        (down,) = await world.batch_ok("other/place", "download", [item], world.auth("other"))
        (up,) = await world.batch_ok("other/place", "upload", [item], world.auth("other"))
        through_b.append((down["error"], sorted(up["actions"])))
    assert through_b[0] == through_b[1], "repository B answers differently for an object only A holds"
