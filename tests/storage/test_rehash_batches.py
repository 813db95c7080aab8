"""fsck --rehash of small objects in batches (``StoreInventory.digests``): every backend hashes a batch right, and a
corrupt body is found whichever batch it falls in, next to big bodies that still stream."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from lfsd.core.fsck import BATCH_OBJECTS, SMALL_OBJECT, Fsck, FsckOptions, Problem
from lfsd.core.inventory import IndexedObject
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore
from lfsd.storage.s3 import S3Location, S3Store
from lfsd.storage.s3_client import s3_client
from tests.s3server import S3Server
from tests.storage.test_contract import Source
from tests.support import blob


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.new_bucket()
        async with s3_client(endpoint_url=server.endpoint, region=None, path_style=True, max_connections=10) as client:
            yield S3Store(client, S3Location(bucket, "lfs"))
        return
    local = LocalStore(tmp_path / "store", BufferPool(64 * 1024, 1 << 20), fsync=False, direct_io=False)
    local.prepare()
    yield local


async def test_digests_hash_each_body_and_name_missing_or_short_ones(store: Any) -> None:
    items = [blob(size, seed=str(size).encode()) for size in (0, 1, 4096, 100_000)]
    for item in items:
        await store.put(Oid.parse(item.oid), item.size, Source(item.data))
    absent = Oid.parse(hashlib.sha256(b"never stored").hexdigest())
    wanted = [(Oid.parse(item.oid), item.size) for item in items]
    digests = await store.digests([*wanted, (absent, 12)])
    assert digests == {**{item.oid: item.oid for item in items}, absent: None}
    # A body of another length than expected (the index says 4097, the store holds 4096) has no digest.
    assert await store.digests([(Oid.parse(items[2].oid), 4097)]) == {items[2].oid: None}
    assert await store.digests([(Oid.parse(items[2].oid), 4095)]) == {items[2].oid: None}


class Rows:
    """An index of the given rows, paged in oid order."""

    def __init__(self, rows: list[IndexedObject]) -> None:
        self.rows = sorted(rows, key=lambda row: row.oid)

    async def count(self, repo: RepoPath | None = None) -> int:
        return len(self.rows)

    async def page(self, after: Oid | None, limit: int, repo: RepoPath | None = None) -> list[IndexedObject]:
        return [row for row in self.rows if after is None or row.oid > after][:limit]

    async def unlink(self, oids: Collection[Oid]) -> int:
        raise AssertionError("no repair asked for")

    async def unlink_from(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        raise AssertionError("no repair asked for")

    async def adopt(self, sizes: Mapping[Oid, int]) -> int:
        raise AssertionError("nothing to adopt")


async def test_corrupt_small_and_big_bodies_are_found_across_batches(tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "store", BufferPool(64 * 1024, 1 << 20), fsync=False, direct_io=False)
    local.prepare()
    small = [blob(4096, seed=f"small-{i}".encode()) for i in range(2 * BATCH_OBJECTS + 7)]
    big = [blob(SMALL_OBJECT + 1, seed=f"big-{i}".encode()) for i in range(3)]
    for item in [*small, *big]:
        await local.put(Oid.parse(item.oid), item.size, Source(item.data))
    repos = (RepoPath("acme/game"),)
    index = Rows([IndexedObject(Oid.parse(item.oid), item.size, repos) for item in [*small, *big]])
    # The same length, other bytes: only a re-hash can tell. The first and last small ones by oid (first and last
    # batch, the last one flushed after the walk), and one big one.
    ordered = sorted(small, key=lambda item: item.oid)
    corrupt = {ordered[0].oid, ordered[-1].oid, big[1].oid}
    for oid in corrupt:
        path = local.path_of(Oid.parse(oid))
        path.write_bytes(bytes(255 - b for b in path.read_bytes()))

    report = await Fsck(index, local).run(FsckOptions(rehash=True))

    assert {(f.oid, f.problem, f.repos) for f in report.damaged} == {(oid, Problem.CORRUPT, repos) for oid in corrupt}
    assert report.rehashed_objects == len(small) + len(big) - len(corrupt)
    assert report.rehashed_bytes == sum(item.size for item in [*small, *big] if item.oid not in corrupt)
    assert report.objects == len(small) + len(big)
