"""The storage contract: every ObjectStore implementation runs these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfsd.core.errors import ChecksumMismatch, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.core.ports import ObjectStore
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore
from lfsd.storage.s3 import S3Location, S3Store
from lfsd.storage.s3_client import s3_client
from tests.s3server import S3Server
from tests.support import blob

BUFFER = 64 * 1024
PART = 5 * 1024 * 1024  # the S3 store's part size here: S3's minimum


class Source:
    """A body delivered in uneven chunks, optionally failing after ``fail_after`` bytes."""

    def __init__(self, data: bytes, *, chunk: int = 10_000, fail_after: int | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._chunk = chunk
        self._fail_after = fail_after

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("client went away")
        end = min(self._pos + self._chunk, len(self._data))
        out = bytes(self._data[self._pos : end])
        self._pos = end
        return out


@pytest.fixture(params=["local-direct", "local-buffered", "local-named", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.new_bucket()
        async with s3_client(endpoint_url=server.endpoint, region=None, path_style=True, max_connections=10) as client:
            yield S3Store(client, S3Location(bucket, "lfsd/objects"), part_size=PART, parts_in_flight=3)
            pending = await client.list_multipart_uploads(Bucket=bucket)
            assert pending.get("Uploads", []) == [], "a multipart upload was left behind"
        return
    direct = request.param != "local-buffered"
    unnamed = request.param != "local-named"  # named temp files: file systems without O_TMPFILE
    pool = BufferPool(BUFFER, 1 << 20)
    local = LocalStore(tmp_path / "store", pool, fsync=True, direct_io=direct, unnamed_files=unnamed)
    local.prepare()
    yield local
    leftovers = list((tmp_path / "store" / "tmp").iterdir())
    assert leftovers == [], f"temp files left behind: {leftovers}"


async def _read_all(store: ObjectStore, oid: Oid) -> bytes | None:
    stored = await store.get(oid)
    if stored is None:
        return None
    return b"".join([chunk async for chunk in store.read(oid, 0, stored.size)])


@pytest.mark.parametrize("size", [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 17, PART - 1, PART, PART + 1])
async def test_put_then_get(store: ObjectStore, size: int) -> None:
    item = blob(size)
    oid = Oid.parse(item.oid)
    assert await store.get(oid) is None
    await store.put(oid, size, Source(item.data))
    assert await store.size_of(oid) == size
    assert await _read_all(store, oid) == item.data


@pytest.mark.parametrize("chunk", [1, 4096, BUFFER + 1, 5 * BUFFER])
async def test_chunk_sizes_do_not_matter(store: ObjectStore, chunk: int) -> None:
    item = blob(3 * BUFFER + 5 if chunk > 1 else 5000)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data, chunk=chunk))
    assert await _read_all(store, oid) == item.data


async def test_ranges(store: ObjectStore) -> None:
    item = blob(3 * BUFFER + 11)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data))
    for start, length in [(0, 1), (5, 100), (BUFFER - 3, 7), (item.size - 1, 1), (0, item.size), (17, item.size - 17)]:
        got = b"".join([chunk async for chunk in store.read(oid, start, length)])
        assert got == item.data[start : start + length], (start, length)


async def test_put_existing_object_verifies_again(store: ObjectStore) -> None:
    item = blob(1000)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data))
    await store.put(oid, item.size, Source(item.data))
    with pytest.raises(ChecksumMismatch):
        await store.put(oid, item.size, Source(b"x" * item.size))
    assert await _read_all(store, oid) == item.data


@pytest.mark.parametrize("size", [BUFFER * 2, PART * 2 + 1])
async def test_hash_mismatch_leaves_nothing(store: ObjectStore, size: int) -> None:
    item = blob(size)
    wrong = Oid.parse("0" * 64)
    with pytest.raises(ChecksumMismatch):
        await store.put(wrong, item.size, Source(item.data))
    assert await store.get(wrong) is None


@pytest.mark.parametrize("declared_delta", [-1, 1, -BUFFER])
@pytest.mark.parametrize("base", [BUFFER, BUFFER * 2, PART + BUFFER])
async def test_size_mismatch_leaves_nothing(store: ObjectStore, declared_delta: int, base: int) -> None:
    item = blob(base)
    oid = Oid.parse(item.oid)
    with pytest.raises(SizeMismatch):
        await store.put(oid, item.size + declared_delta, Source(item.data))
    assert await store.get(oid) is None


@pytest.mark.parametrize("size", [BUFFER * 3, PART * 2 + 100])
async def test_truncated_stream_leaves_nothing(store: ObjectStore, size: int) -> None:
    item = blob(size)
    oid = Oid.parse(item.oid)
    with pytest.raises(ConnectionResetError):
        await store.put(oid, item.size, Source(item.data, fail_after=size - 5 * BUFFER))
    assert await store.get(oid) is None


@pytest.mark.parametrize("size", [BUFFER * 4 + 3, PART + 3])
async def test_concurrent_puts_of_one_oid(store: ObjectStore, size: int) -> None:
    item = blob(size)
    oid = Oid.parse(item.oid)
    await asyncio.gather(*(store.put(oid, item.size, Source(item.data, chunk=7000 + i)) for i in range(6)))
    assert await _read_all(store, oid) == item.data


async def test_check_passes_on_a_writable_store(store: ObjectStore) -> None:
    await store.check()
