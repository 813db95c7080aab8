"""The store side of fsck (``StoreInventory``) on every backend, and the re-hash's memory and pace."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from lfsd.core.fsck import Fsck, FsckOptions
from lfsd.core.inventory import IndexedObject, StoreInventory
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore
from lfsd.storage.s3 import S3Location, S3Store
from lfsd.storage.s3_client import s3_client
from tests.s3server import S3Server
from tests.storage.test_contract import Source
from tests.support import blob

MiB = 1024 * 1024


Noise = Callable[[str], None]  # writes a key or file below the store's root that is not an object


@pytest.fixture(params=["local", "s3"])
async def inventory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Any, Noise]]:
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.new_bucket()
        async with s3_client(endpoint_url=server.endpoint, region=None, path_style=True, max_connections=10) as client:

            def put_key(relative: str) -> None:
                import boto3

                raw = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
                raw.put_object(Bucket=bucket, Key=f"lfs/{relative}", Body=b"noise")
                raw.put_object(Bucket=bucket, Key=f"elsewhere/{relative}", Body=b"noise")

            yield S3Store(client, S3Location(bucket, "lfs")), put_key
        return
    local = LocalStore(tmp_path / "store", BufferPool(64 * 1024, 1 << 20), fsync=False, direct_io=False)
    local.prepare()

    def put_file(relative: str) -> None:
        path = tmp_path / "store" / "objects" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"noise")

    yield local, put_file


async def test_listing_is_every_object_in_oid_order_and_nothing_else(inventory: tuple[Any, Noise]) -> None:
    store, noise = inventory
    items = [blob(100 + i) for i in range(40)]
    for item in items:
        await store.put(Oid.parse(item.oid), item.size, Source(item.data))
    oid = items[0].oid
    # A staged direct upload, a quarantined body, a misplaced object and a stray name: none of them is an object.
    noise(f"staging/{oid}/{'0' * 32}")
    noise(f"quarantine/{oid}.123")
    noise(f"00/00/{oid}")
    noise(f"{oid[:2]}/{oid[2:4]}/README")

    listed = [(body.oid, body.size) async for body in store.listing()]
    assert listed == sorted((item.oid, item.size) for item in items)

    sizes = await store.sizes([Oid.parse(items[1].oid), Oid.parse("f" * 64)])
    assert sizes == {items[1].oid: items[1].size}

    where = await store.quarantine(Oid.parse(oid))
    assert where is not None and "quarantine" in where
    assert await store.size_of(Oid.parse(oid)) is None
    assert await store.quarantine(Oid.parse(oid)) is None
    assert [body.oid async for body in store.listing()] == sorted(item.oid for item in items[1:])


class OneObject:
    """An index holding one object: the store is what this test is about."""

    def __init__(self, oid: Oid, size: int) -> None:
        self.row = IndexedObject(oid, size, (RepoPath("acme/game"),))

    async def count(self, repo: RepoPath | None = None) -> int:
        return 1

    async def page(self, after: Oid | None, limit: int, repo: RepoPath | None = None) -> list[IndexedObject]:
        return [] if after is not None else [self.row]

    async def unlink(self, oids: Collection[Oid]) -> int:
        raise AssertionError("nothing to unlink")

    async def unlink_from(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        raise AssertionError("nothing to unlink")

    async def adopt(self, sizes: Mapping[Oid, int]) -> int:
        raise AssertionError("nothing to adopt")


async def _one_big_object(tmp_path: Path, size: int) -> tuple[StoreInventory, OneObject]:
    store = LocalStore(tmp_path / "store", BufferPool(1 * MiB, 4 * MiB), fsync=False, direct_io=False)
    store.prepare()
    item = blob(size, seed=b"big")
    oid = Oid.parse(item.oid)
    await store.put(oid, size, Source(item.data, chunk=MiB))
    return store, OneObject(oid, size)


async def test_rehash_reads_in_bounded_chunks(tmp_path: Path) -> None:
    size = 48 * MiB
    store, index = await _one_big_object(tmp_path, size)
    tracemalloc.start()
    try:
        report = await Fsck(index, store).run(FsckOptions(rehash=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.rehashed_bytes == size and report.damaged == []
    assert peak < 4 * MiB, f"the re-hash held {peak / MiB:.1f} MiB for a {size // MiB} MiB object"


async def test_max_rate_paces_the_rehash(tmp_path: Path) -> None:
    size = 2 * MiB
    store, index = await _one_big_object(tmp_path, size)
    started = time.monotonic()
    report = await Fsck(index, store).run(FsckOptions(rehash=True, max_rate=8 * MiB))
    assert report.rehashed_bytes == size
    assert time.monotonic() - started >= 0.2  # 2 MiB at 8 MiB/s: a quarter of a second, less the first chunk
