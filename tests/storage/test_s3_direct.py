"""Direct mode: presigned URLs bound to the object, and a verify step that links only what the store really holds."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from lfsd.core.errors import ChecksumMismatch, NotFound, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.storage.s3 import S3DirectTransfers, S3Location, S3Store
from lfsd.storage.s3_client import s3_client
from tests.s3server import S3Server
from tests.storage.test_contract import PART, Source
from tests.support import blob


@pytest.fixture
async def direct(s3_server: S3Server) -> AsyncIterator[tuple[S3Store, S3DirectTransfers]]:
    bucket = s3_server.new_bucket()
    async with s3_client(endpoint_url=s3_server.endpoint, region=None, path_style=True, max_connections=4) as client:
        store = S3Store(client, S3Location(bucket, "lfs"), part_size=PART)
        yield store, S3DirectTransfers(store)


async def _put(url: str, headers: dict[str, str], data: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.put(url, data=data, headers=headers) as response:
        return response.status


async def test_presigned_round_trip(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    _, transfers = direct
    item = blob(70_000)
    oid = Oid.parse(item.oid)
    action = await transfers.upload_action(oid, item.size, 600)
    assert action is not None and "Authorization" not in action.header
    assert action.header["Content-Type"] == "application/octet-stream"
    assert action.header["x-amz-checksum-sha256"]
    assert "X-Amz-Signature" in action.href
    assert await _put(action.href, action.header, item.data) == 200
    await transfers.verify_upload(oid, item.size)
    download = await transfers.download_action(oid, 600)
    async with aiohttp.ClientSession() as session, session.get(download.href) as response:
        assert hashlib.sha256(await response.read()).hexdigest() == item.oid
    # Stored now: a second upload must not overwrite it through a presigned PUT.
    assert await transfers.upload_action(oid, item.size, 600) is None


async def test_verify_refuses_and_removes_wrong_uploads(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    store, transfers = direct
    item = blob(5000)
    oid = Oid.parse(item.oid)
    with pytest.raises(NotFound):
        await transfers.verify_upload(oid, item.size)
    action = await transfers.upload_action(oid, item.size, 600)
    assert action is not None
    await _put(action.href, action.header, b"x" * item.size)  # the wrong bytes (a store that checks refuses them)
    with pytest.raises(ChecksumMismatch):
        await transfers.verify_upload(oid, item.size)
    assert await store.get(oid) is None

    await _put(action.href, action.header, item.data[:-1])
    with pytest.raises(SizeMismatch):
        await transfers.verify_upload(oid, item.size)
    assert await store.get(oid) is None


async def test_huge_objects_stay_proxied(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    _, transfers = direct
    assert await transfers.upload_action(Oid("a" * 64), 6 * 1024**3, 600) is None


async def test_proxied_upload_then_direct_download(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    store, transfers = direct
    item = blob(PART + 10)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data, chunk=100_000))
    await transfers.verify_upload(oid, item.size)
