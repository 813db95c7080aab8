"""An object the index says a repository holds but the store lacks: a clear 404, an error log, and the next push
repairs it. Nothing is unlinked automatically (a mis-mounted volume would otherwise erase the index)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lfsd.config import Settings, SettingsArgs
from lfsd.core.oid import Oid
from tests.conftest import AiohttpClient, open_world
from tests.s3server import S3Server
from tests.support import LFS_HEADERS, World, blob, lfs_error

Remove = Callable[[Oid], None]


@pytest.fixture(params=["local", "s3", "s3-direct"])
async def lossy(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_client: AiohttpClient
) -> AsyncIterator[tuple[World, Remove, bool]]:
    """A world, a way to lose an object's bytes behind lfsd's back, and whether direct mode is on."""
    settings: SettingsArgs = {"data_dir": tmp_path / "data", "fsync": False, "buffer_size": 64 * 1024}
    remove: Remove
    if request.param == "local":

        def remove(oid: Oid) -> None:
            first, second = oid.shard
            (tmp_path / "data" / "objects" / first / second / oid).unlink()

    else:
        import boto3

        s3_server: S3Server = request.getfixturevalue("s3_server")
        bucket = s3_server.new_bucket()
        settings.update(
            {
                "storage": f"s3://{bucket}/lfs",
                "s3_endpoint_url": s3_server.endpoint,
                "s3_path_style": True,
                "s3_direct": request.param == "s3-direct",
            }
        )
        client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")

        def remove(oid: Oid) -> None:
            first, second = oid.shard
            client.delete_object(Bucket=bucket, Key=f"lfs/{first}/{second}/{oid}")

    world = await open_world(Settings(**settings), aiohttp_client)
    yield world, remove, request.param == "s3-direct"
    await world.meta.close()


async def _upload(world: World, obj: dict[str, Any], data: bytes) -> None:
    upload = obj["actions"]["upload"]
    async with aiohttp.ClientSession() as session:
        response = await session.put(upload["href"], data=io.BytesIO(data), headers=upload["header"])
        assert response.status == 200, await response.text()
    if "verify" in obj["actions"]:
        verify = obj["actions"]["verify"]
        body = {"oid": obj["oid"], "size": obj["size"]}
        response = await world.client.session.post(
            verify["href"], json=body, headers={**LFS_HEADERS, **verify["header"]}
        )
        assert response.status == 200, await response.text()


async def test_a_lost_object_is_a_clear_404_and_the_next_push_repairs_it(
    lossy: tuple[World, Remove, bool], caplog: pytest.LogCaptureFixture
) -> None:
    world, remove, direct = lossy
    item, other = blob(5000), blob(6000)
    (first, second) = await world.batch_ok("acme/game", "upload", [item, other], world.auth("root"))
    await _upload(world, first, item.data)
    await _upload(world, second, other.data)
    oid = Oid.parse(item.oid)
    remove(oid)

    if not direct:  # in direct mode the download goes to the store itself
        (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
        action = obj["actions"]["download"]
        with caplog.at_level(logging.ERROR, logger="lfsd"):
            response = await world.client.session.get(action["href"], headers=action["header"])
            body = await lfs_error(response, 404)
        assert "missing" in body["message"]
        assert any(item.oid in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
        caplog.clear()

    # The index still holds it (never unlinked on a miss), but a push is asked for the bytes again.
    with caplog.at_level(logging.ERROR, logger="lfsd"):
        objs = await world.batch_ok("acme/game", "upload", [item, other], world.auth("root"))
    assert "actions" in objs[0] and "actions" not in objs[1]
    assert any(item.oid in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
    await _upload(world, objs[0], item.data)
    (again,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    assert "actions" not in again
    if not direct:
        assert await world.fetch("acme/game", item, world.auth("root")) == item.data


async def test_a_lost_object_is_not_linked_from_another_repository(
    lossy: tuple[World, Remove, bool],
) -> None:
    """Dedup links only objects whose bytes are there: otherwise the second repository would hold nothing."""
    world, remove, _ = lossy
    item = blob(7000)
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    await _upload(world, obj, item.data)
    remove(Oid.parse(item.oid))
    await world.repo("acme/other")
    (obj,) = await world.batch_ok("acme/other", "upload", [item], world.auth("root"))
    assert "upload" in obj["actions"]
