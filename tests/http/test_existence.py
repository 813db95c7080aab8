"""A private repository's existence does not show in the refusal: same status, same body, same SQL statements."""

from __future__ import annotations

from tests.sql import statements
from tests.support import LFS_HEADERS, World, lfs_error


async def _refusal(world: World, repo: str, headers: dict[str, str], status: int) -> tuple[list[str], str]:
    with statements() as seen:
        response = await world.client.post(
            f"/{repo}.git/info/lfs/objects/batch",
            json={"operation": "download", "objects": []},
            headers={**LFS_HEADERS, **headers},
        )
        body = await lfs_error(response, status)
    return seen, body["message"]


async def test_missing_and_private_repositories_are_refused_after_the_same_work(world: World) -> None:
    await world.repo("acme/secret")
    stranger = await world.user("stranger")
    # Warm up whatever runs once per process (the connection's first use, dialect checks).
    await _refusal(world, "acme/warmup", stranger, 404)

    private, private_message = await _refusal(world, "acme/secret", stranger, 404)
    missing, missing_message = await _refusal(world, "acme/nothing", stranger, 404)
    assert private_message == missing_message
    assert private == missing, "the refusal runs other SQL when the repository exists"

    anonymous_private, message = await _refusal(world, "acme/secret", {}, 401)
    anonymous_missing, other_message = await _refusal(world, "acme/nothing", {}, 401)
    assert message == other_message and anonymous_private == anonymous_missing


async def test_transfer_and_lock_endpoints_refuse_the_same_way(world: World) -> None:
    await world.repo("acme/secret")
    stranger = await world.user("stranger")
    oid = "0" * 64
    for suffix in (f"info/lfs/objects/{oid}", "info/lfs/locks"):
        results = []
        for repo in ("acme/secret", "acme/nothing", "acme/secret", "acme/nothing"):
            with statements() as seen:
                response = await world.client.get(f"/{repo}.git/{suffix}", headers={**LFS_HEADERS, **stranger})
                body = await lfs_error(response, 404)
            results.append((seen, body["message"]))
        assert results[2] == results[3], suffix
