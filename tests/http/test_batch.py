from __future__ import annotations

import io
from typing import Any

import pytest

from lfsd.core.repo import RepoPath
from lfsd.http.media import LFS_JSON
from tests.support import LFS_HEADERS, World, blob, lfs_error


async def test_upload_then_download_round_trip(world: World) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "write"})
    items = [blob(0), blob(1), blob(200_000)]
    await world.push("acme/game", items, world.auth("alice"))
    for item in items:
        assert await world.fetch("acme/game", item, world.auth("alice")) == item.data


async def test_response_shape_follows_the_spec(world: World) -> None:
    await world.repo("acme/game")
    item = blob(10)
    response = await world.batch("acme/game", "upload", [item.spec()], world.auth("root"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith(LFS_JSON)
    body = await response.json(content_type=LFS_JSON)
    assert body["transfer"] == "basic"
    assert body["hash_algo"] == "sha256"
    (obj,) = body["objects"]
    # No "authenticated": the link's own Authorization header keeps git-lfs from asking for credentials, and
    # without the flag it sends the transfer over the batch's connection instead of opening another.
    assert obj == {"oid": item.oid, "size": 10, "actions": obj["actions"]}
    upload = obj["actions"]["upload"]
    assert set(upload) == {"href", "header", "expires_in"}
    assert upload["href"].endswith(f"/acme/game.git/info/lfs/objects/{item.oid}")
    assert upload["header"]["Authorization"].startswith("LFSD-Link ")
    assert isinstance(upload["expires_in"], int) and 0 < upload["expires_in"] <= 86400
    assert "verify" not in obj["actions"]


async def test_held_object_upload_has_no_actions(world: World) -> None:
    await world.repo("acme/game")
    item = blob(100)
    await world.push("acme/game", [item], world.auth("root"))
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    assert "actions" not in obj and "error" not in obj


async def test_download_missing_object_is_per_object_404(world: World) -> None:
    await world.repo("acme/game")
    present, missing = blob(5), blob(6)
    await world.push("acme/game", [present], world.auth("root"))
    objs = await world.batch_ok("acme/game", "download", [present, missing], world.auth("root"))
    assert "download" in objs[0]["actions"]
    assert objs[1]["error"]["code"] == 404 and "actions" not in objs[1]


async def test_every_object_invalid_is_still_200(world: World) -> None:
    await world.repo("acme/game")
    objects: list[dict[str, Any]] = [{"oid": "XYZ", "size": 1}, {"oid": "a" * 64, "size": -5}, {"size": 3}]
    response = await world.batch("acme/game", "download", objects, world.auth("root"))
    assert response.status == 200
    body = await response.json(content_type=LFS_JSON)
    assert [o["error"]["code"] for o in body["objects"]] == [422, 422, 422]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"ref": None},
        {"ref": {}},
        {"ref": {"name": "refs/heads/main"}},
        {"unknown": [1, 2]},
        {"hash_algo": "sha256"},
    ],
)
async def test_optional_fields_accepted(world: World, extra: dict[str, Any]) -> None:
    await world.repo("acme/game")
    response = await world.batch("acme/game", "download", [blob(1).spec()], world.auth("root"), **extra)
    assert response.status == 200


async def test_transfers_absent_means_basic(world: World) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": [blob(1).spec()]},
        headers={**LFS_HEADERS, **world.auth("root")},
    )
    assert response.status == 200
    assert (await response.json(content_type=LFS_JSON))["transfer"] == "basic"


async def test_unsupported_hash_algo_is_409(world: World) -> None:
    await world.repo("acme/game")
    response = await world.batch("acme/game", "download", [], world.auth("root"), hash_algo="sha512")
    await lfs_error(response, 409)


async def test_no_basic_transfer_is_422(world: World) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch",
        json={"operation": "download", "transfers": ["tus"], "objects": []},
        headers={**LFS_HEADERS, **world.auth("root")},
    )
    await lfs_error(response, 422)


async def test_charset_parameter_accepted_and_git_suffix_optional(world: World) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game/info/lfs/objects/batch",
        json={"operation": "download", "objects": []},
        headers={
            "Accept": LFS_JSON + "; charset=utf-8",
            "Content-Type": LFS_JSON + "; charset=utf-8",
            **world.auth("root"),
        },
    )
    assert response.status == 200


async def test_nested_repository_paths(world: World) -> None:
    await world.repo("group/sub/name")
    item = blob(33)
    await world.push("group/sub/name", [item], world.auth("root"))
    assert await world.fetch("group/sub/name", item, world.auth("root")) == item.data


async def test_wrong_accept_is_406(world: World) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": []},
        headers={"Accept": "text/html", "Content-Type": LFS_JSON, **world.auth("root")},
    )
    await lfs_error(response, 406)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
async def test_wrong_content_type_is_415(world: World, content_type: str) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch",
        data=b'{"operation":"download","objects":[]}',
        headers={"Accept": LFS_JSON, "Content-Type": content_type, **world.auth("root")},
    )
    await lfs_error(response, 415)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b"", 400),
        (b"[1,2", 400),
        (b"null", 422),
        (b"[]", 422),
        (b'{"operation":"download"}', 422),
        (b'{"operation":"download","objects":{}}', 422),
        (b'{"operation":"download","objects":[1]}', 422),
        (b'{"operation":"delete","objects":[]}', 422),
        (b'{"operation":7,"objects":[]}', 422),
        (b"[" * 100_000 + b"]" * 100_000, 400),
    ],
)
async def test_malformed_bodies(world: World, body: bytes, status: int) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch", data=body, headers={**LFS_HEADERS, **world.auth("root")}
    )
    await lfs_error(response, status)


async def test_too_many_objects_is_413(world: World) -> None:
    await world.repo("acme/game")
    objects = [{"oid": f"{i:064x}", "size": 1} for i in range(1001)]
    response = await world.batch("acme/game", "download", objects, world.auth("root"))
    await lfs_error(response, 413)


async def test_body_too_large_is_413(world: World) -> None:
    await world.repo("acme/game")
    response = await world.client.post(
        "/acme/game.git/info/lfs/objects/batch",
        data=io.BytesIO(b" " * (5 * 1024 * 1024)),
        headers={**LFS_HEADERS, **world.auth("root")},
    )
    await lfs_error(response, 413)


async def test_get_on_batch_is_405(world: World) -> None:
    response = await world.client.get("/acme/game.git/info/lfs/objects/batch")
    body = await lfs_error(response, 405)
    assert response.headers["Allow"] == "POST"
    assert body["message"]


async def test_admin_first_push_creates_repository(world: World) -> None:
    item = blob(9)
    await world.push("new/repo", [item], world.auth("root"))
    assert await world.meta.repos.find(RepoPath("new/repo")) is not None


async def test_non_admin_cannot_create_by_pushing(world: World) -> None:
    await world.user("alice")
    response = await world.batch("alice/new", "upload", [blob(1).spec()], world.auth("alice"))
    await lfs_error(response, 404)
