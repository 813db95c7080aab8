"""S3 direct mode against a store that checks no checksum (moto): two writers in two repositories race on one oid.

The verified object must survive every interleaving of the other writer's batch, presigned PUT and verify, whether
that writer sends junk of the right size, declares a wrong size, or never uploads at all.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lfsd.config import Settings
from lfsd.core.gc import Collector, GcOptions
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.resources import open_store
from lfsd.storage.s3 import S3Location
from tests.conftest import AiohttpClient, open_world
from tests.s3server import S3Server
from tests.support import LFS_HEADERS, Blob, World, blob

Step = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class DirectWorld:
    world: World
    bucket: str
    endpoint: str

    def keys(self) -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        return sorted(item["Key"] for item in client.list_objects_v2(Bucket=self.bucket).get("Contents", []))


@pytest.fixture
async def direct_world(
    tmp_path: Path, s3_server: S3Server, aiohttp_client: AiohttpClient
) -> AsyncIterator[DirectWorld]:
    bucket = s3_server.new_bucket()
    settings = Settings(
        data_dir=tmp_path / "data",
        storage=f"s3://{bucket}/lfs",
        s3_endpoint_url=s3_server.endpoint,
        s3_path_style=True,
        s3_direct=True,
        fsync=False,
        buffer_size=64 * 1024,
    )
    world = await open_world(settings, aiohttp_client)
    await world.user("alice")
    await world.user("mallory")
    await world.repo("acme/private", grants={"alice": "write"})
    await world.repo("evil/repo", grants={"mallory": "write"})
    yield DirectWorld(world, bucket, s3_server.endpoint)
    await world.meta.close()


async def _put(action: dict[str, Any], data: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.put(action["href"], data=io.BytesIO(data), headers=action["header"]) as response,
    ):
        return response.status


async def _verify(world: World, action: dict[str, Any], oid: str, size: int) -> int:
    response = await world.client.session.post(
        action["href"], json={"oid": oid, "size": size}, headers={**LFS_HEADERS, **action["header"]}
    )
    return response.status


class Writer:
    """One writer's batch → PUT → verify, each a step that can be interleaved with another writer's."""

    def __init__(self, world: World, name: str, repo: str, item: Blob, *, size: int, body: bytes | None) -> None:
        self.world, self.name, self.repo, self.item = world, name, repo, item
        self.size = size
        self.body = body
        self.actions: dict[str, Any] = {}
        self.verify_status: int | None = None

    async def batch(self) -> None:
        spec = {"oid": self.item.oid, "size": self.size}
        response = await self.world.batch(self.repo, "upload", [spec], self.world.auth(self.name))
        assert response.status == 200, await response.text()
        (obj,) = (await response.json(content_type=None))["objects"]
        assert set(obj["actions"]) == {"upload", "verify"}, obj
        self.actions = obj["actions"]

    async def put(self) -> None:
        assert self.body is not None
        assert await _put(self.actions["upload"], self.body) == 200

    async def verify(self) -> None:
        self.verify_status = await _verify(self.world, self.actions["verify"], self.item.oid, self.size)

    def steps(self) -> list[Step]:
        return [self.batch, self.verify] if self.body is None else [self.batch, self.put, self.verify]


def _interleavings(first: list[Step], second: list[Step]) -> list[list[Step]]:
    """Every merge of the two sequences that keeps each one's own order."""
    total = len(first) + len(second)
    orders = []
    for slots in itertools.combinations(range(total), len(first)):
        a, b = iter(first), iter(second)
        orders.append([next(a) if i in slots else next(b) for i in range(total)])
    return orders


VARIANTS: dict[str, Callable[[Blob], tuple[int, bytes | None]]] = {
    "junk of the right size": lambda item: (item.size, b"j" * item.size),
    "a wrong size": lambda item: (item.size + 1, b"w" * (item.size + 1)),
    "no upload at all": lambda item: (item.size, None),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_the_verified_object_survives_every_interleaving(direct_world: DirectWorld, variant: str) -> None:
    world = direct_world.world
    stored: list[str] = []
    for number in itertools.count():
        item = blob(3000 + number)
        owner = Writer(world, "alice", "acme/private", item, size=item.size, body=item.data)
        size, body = VARIANTS[variant](item)
        other = Writer(world, "mallory", "evil/repo", item, size=size, body=body)
        orders = _interleavings(owner.steps(), other.steps())
        if number >= len(orders):
            break
        for step in orders[number]:
            await step()
        assert owner.verify_status == 200
        assert other.verify_status in (404, 422), other.verify_status
        assert await world.fetch("acme/private", item, world.auth("alice")) == item.data
        (again,) = await world.batch_ok("acme/private", "upload", [item], world.auth("alice"))
        assert "actions" not in again  # held and present: nothing to send
        (theirs,) = await world.batch_ok("evil/repo", "download", [item], world.auth("mallory"))
        assert theirs["error"]["code"] == 404
        oid = Oid.parse(item.oid)
        stored.append(f"lfs/{oid.shard[0]}/{oid.shard[1]}/{oid}")
    assert len(stored) == len(_interleavings([owner.batch] * 3, [other.batch] * len(other.steps())))
    assert direct_world.keys() == sorted(stored)  # the objects, and no staging key left behind


async def test_a_verified_upload_refused_by_the_quota_is_left_to_the_garbage_collector(
    tmp_path: Path, direct_world: DirectWorld
) -> None:
    """Two direct uploads that each fit the quota at batch time: the second verify promotes its bytes to the
    object's key, then its link is refused. The bytes are recorded as held by no repository, so the collector
    removes them; without a row they would stay in the bucket for ever."""
    world = direct_world.world
    root = world.auth("root")
    await world.meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 1000)
    first, second = blob(600, b"1"), blob(600, b"2")
    (one,) = await world.batch_ok("acme/game", "upload", [first], root)
    (two,) = await world.batch_ok("acme/game", "upload", [second], root)
    assert await _put(one["actions"]["upload"], first.data) == 200
    assert await _put(two["actions"]["upload"], second.data) == 200
    assert await _verify(world, one["actions"]["verify"], first.oid, first.size) == 200
    assert await _verify(world, two["actions"]["verify"], second.oid, second.size) == 507
    kept, refused = Oid.parse(first.oid), Oid.parse(second.oid)
    location = S3Location(direct_world.bucket, "lfs")
    assert direct_world.keys() == sorted([location.key(kept), location.key(refused)])
    settings = Settings(
        data_dir=tmp_path / "gc",
        storage=f"s3://{direct_world.bucket}/lfs",
        s3_endpoint_url=direct_world.endpoint,
        s3_path_style=True,
    )
    async with AsyncExitStack() as resources:
        store = (await open_store(settings, resources)).store
        grace = GcOptions(grace=timedelta(seconds=60))
        await Collector(SqlGcIndex(world.meta.db), store, utcnow, "test-gc").run(grace)  # marks it unreferenced
        later = Collector(SqlGcIndex(world.meta.db), store, lambda: utcnow() + timedelta(seconds=61), "test-gc")
        assert (await later.run(grace)).objects == 1
    assert direct_world.keys() == [location.key(kept)]


async def test_two_pushes_of_one_object_in_the_same_second_both_verify(
    direct_world: DirectWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CI jobs push the same new object with the same token at once: their batch answers carry the same link
    token, but each gets a staging key of its own, so the first verify cannot remove the second one's upload."""
    world = direct_world.world
    item = blob(2500)
    first, second = (Writer(world, "alice", "acme/private", item, size=item.size, body=item.data) for _ in range(2))
    frozen = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: frozen)  # one second for both batches: one link token
        await first.batch()
        await second.batch()
    assert first.actions["verify"]["header"] == second.actions["verify"]["header"]
    assert first.actions["upload"]["href"] != second.actions["upload"]["href"]
    await first.put()
    await second.put()
    await first.verify()
    await second.verify()
    assert (first.verify_status, second.verify_status) == (200, 200)
    assert await world.fetch("acme/private", item, world.auth("alice")) == item.data
    oid = Oid.parse(item.oid)
    assert direct_world.keys() == [S3Location(direct_world.bucket, "lfs").key(oid)]  # no staging key left


async def test_a_verify_link_with_a_malformed_nonce_is_refused(direct_world: DirectWorld) -> None:
    world = direct_world.world
    item = blob(2600)
    writer = Writer(world, "alice", "acme/private", item, size=item.size, body=item.data)
    await writer.batch()
    await writer.put()
    href = writer.actions["verify"]["href"]
    assert "?upload=" in href
    tampered = {**writer.actions["verify"], "href": href.partition("?")[0] + "?upload=not-hex"}
    assert await _verify(world, tampered, item.oid, item.size) == 422
    assert await _verify(world, writer.actions["verify"], item.oid, item.size) == 200
