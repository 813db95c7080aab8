"""Direct mode: presigned uploads land on a staging key of their own; verify promotes only the right bytes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

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


def _upload_id() -> str:
    return secrets.token_hex(16)


async def _put(url: str, headers: dict[str, str], data: bytes) -> int:
    body = io.BytesIO(data)  # aiohttp warns about large raw byte bodies
    async with aiohttp.ClientSession() as session, session.put(url, data=body, headers=headers) as response:
        return response.status


async def _stage(transfers: S3DirectTransfers, oid: Oid, size: int, data: bytes) -> str:
    """A presigned upload of ``data`` (declared as ``size``) to a new staging key; its upload id."""
    upload_id = _upload_id()
    action = await transfers.upload_action(oid, size, 600, upload_id)
    assert action is not None
    assert await _put(action.href, action.header, data) == 200
    return upload_id


async def _body(store: S3Store, oid: Oid) -> bytes | None:
    size = await store.size_of(oid)
    if size is None:
        return None
    return b"".join([chunk async for chunk in store.read(oid, 0, size)])


async def _keys(store: S3Store) -> list[str]:
    listing = await store.client.list_objects_v2(Bucket=store.location.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_presigned_round_trip(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    store, transfers = direct
    item = blob(70_000)
    oid = Oid.parse(item.oid)
    upload_id = _upload_id()
    action = await transfers.upload_action(oid, item.size, 600, upload_id)
    assert action is not None and "Authorization" not in action.header
    assert action.header["Content-Type"] == "application/octet-stream"
    assert action.header["x-amz-checksum-sha256"]
    assert "X-Amz-Signature" in action.href
    assert f"lfs/staging/{oid}/{upload_id}" in action.href
    assert await _put(action.href, action.header, item.data) == 200
    assert await store.get(oid) is None  # staged, not stored, until verified
    await transfers.verify_upload(oid, item.size, upload_id)
    assert await _keys(store) == [store.location.key(oid)]  # promoted, staging key gone
    download = await transfers.download_action(oid, 600)
    async with aiohttp.ClientSession() as session, session.get(download.href) as response:
        assert hashlib.sha256(await response.read()).hexdigest() == item.oid


async def test_verify_refuses_wrong_uploads_and_removes_only_its_staging_key(
    direct: tuple[S3Store, S3DirectTransfers],
) -> None:
    store, transfers = direct
    item = blob(5000)
    oid = Oid.parse(item.oid)
    with pytest.raises(NotFound):
        await transfers.verify_upload(oid, item.size, _upload_id())
    for wrong, error in ((b"x" * item.size, ChecksumMismatch), (item.data[:-1], SizeMismatch)):
        upload_id = await _stage(
            transfers, oid, item.size, wrong
        )  # moto, like some stores, keeps bytes the checksum does not match
        with pytest.raises(error):
            await transfers.verify_upload(oid, item.size, upload_id)
        assert await _keys(store) == []


async def test_store_checksum_is_not_trusted_by_default(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    """A store that records the signed checksum without checking it must not vouch for the bytes."""
    store, transfers = direct
    item = blob(4096)
    oid = Oid.parse(item.oid)
    upload_id = await _stage(transfers, oid, item.size, bytes(item.size))
    with pytest.raises(ChecksumMismatch):
        await transfers.verify_upload(oid, item.size, upload_id)
    assert await store.get(oid) is None


async def test_a_stored_object_survives_every_wrong_upload(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    """The review's data loss: a wrong verify deleted the shared key, a stale presigned PUT overwrote it."""
    store, transfers = direct
    item = blob(20_000)
    oid = Oid.parse(item.oid)
    early = _upload_id()  # issued while the object did not exist yet
    early_action = await transfers.upload_action(oid, item.size, 600, early)
    wrong_size = _upload_id()
    assert await transfers.upload_action(oid, item.size + 1, 600, wrong_size) is not None
    good = _upload_id()
    good_action = await transfers.upload_action(oid, item.size, 600, good)
    assert early_action is not None and good_action is not None
    assert await _put(good_action.href, good_action.header, item.data) == 200
    await transfers.verify_upload(oid, item.size, good)

    with pytest.raises(NotFound):  # nothing staged under that id: answered without touching the object
        await transfers.verify_upload(oid, item.size + 1, wrong_size)
    assert await _put(early_action.href, early_action.header, b"junk" * 5000) == 200
    with pytest.raises(ChecksumMismatch):
        await transfers.verify_upload(oid, item.size, early)
    assert await _body(store, oid) == item.data
    assert await _keys(store) == [store.location.key(oid)]


_SNAPSHOT = re.compile(r"\.[0-9a-f]{16}\.verifying$")


def _staged_of(snapshot: str) -> str:
    """The staging key a verify's snapshot key was made from."""
    return _SNAPSHOT.sub("", snapshot)


class _Meddling:
    """An S3 client through which a second PUT to the staging URL lands just as verify starts reading."""

    def __init__(self, client: Any, junk: bytes) -> None:
        self._client = client
        self._junk = junk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_object(self, **params: Any) -> Any:
        staged = _staged_of(params["Key"])
        await self._client.put_object(Bucket=params["Bucket"], Key=staged, Body=self._junk)
        return await self._client.get_object(**params)

    async def copy_object(self, **params: Any) -> Any:
        if params["CopySource"]["Key"].endswith(".verifying"):
            source = _staged_of(params["CopySource"]["Key"])
            await self._client.put_object(Bucket=params["Bucket"], Key=source, Body=self._junk)
        return await self._client.copy_object(**params)


async def test_bytes_that_change_during_verify_never_reach_the_object(
    direct: tuple[S3Store, S3DirectTransfers],
) -> None:
    store, _ = direct
    item = blob(3000)
    oid = Oid.parse(item.oid)
    meddled = S3Store(_Meddling(store.client, b"y" * item.size), store.location, part_size=PART)
    transfers = S3DirectTransfers(meddled)
    upload_id = await _stage(transfers, oid, item.size, item.data)
    await transfers.verify_upload(oid, item.size, upload_id)
    assert await _body(store, oid) == item.data
    assert await _keys(store) == [store.location.key(oid)]


class _Interleaving:
    """An S3 client that holds the first verify just before it promotes its snapshot, and lets a second verify of the
    same staging key run up to its own hash meanwhile."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.first_checked = asyncio.Event()
        self.first_may_promote = asyncio.Event()
        self.second_snapshot_taken = asyncio.Event()
        self.second_may_hash = asyncio.Event()
        self._promotions = 0
        self._reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def copy_object(self, **params: Any) -> Any:
        if params["CopySource"]["Key"].endswith(".verifying"):
            self._promotions += 1
            if self._promotions == 1:
                self.first_checked.set()
                await self.first_may_promote.wait()
        return await self._client.copy_object(**params)

    async def get_object(self, **params: Any) -> Any:
        self._reads += 1
        if self._reads == 2:
            self.second_snapshot_taken.set()
            await self.second_may_hash.wait()
        return await self._client.get_object(**params)


async def test_a_verify_sent_again_meanwhile_cannot_change_what_the_first_promotes(
    direct: tuple[S3Store, S3DirectTransfers],
) -> None:
    """The presigned URL and the verify link both stay usable until they expire: a client may put other bytes and
    verify again while the first verify is between its hash and its promotion."""
    store, _ = direct
    item = blob(3000)
    oid = Oid.parse(item.oid)
    held = _Interleaving(store.client)
    transfers = S3DirectTransfers(S3Store(held, store.location, part_size=PART))
    upload_id = _upload_id()
    action = await transfers.upload_action(oid, item.size, 600, upload_id)
    assert action is not None
    assert await _put(action.href, action.header, item.data) == 200
    first = asyncio.create_task(transfers.verify_upload(oid, item.size, upload_id))
    await held.first_checked.wait()
    assert await _put(action.href, action.header, b"J" * item.size) == 200
    second = asyncio.create_task(transfers.verify_upload(oid, item.size, upload_id))
    await held.second_snapshot_taken.wait()
    held.first_may_promote.set()
    await first
    held.second_may_hash.set()
    outcome = (await asyncio.gather(second, return_exceptions=True))[0]
    assert isinstance(outcome, (ChecksumMismatch, NotFound)), outcome
    assert await _body(store, oid) == item.data
    assert await _keys(store) == [store.location.key(oid)]


async def test_large_promotions_copy_part_by_part(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    async with s3_client(endpoint_url=s3_server.endpoint, region=None, path_style=True, max_connections=4) as client:
        store = S3Store(client, S3Location(bucket, "lfs"), part_size=PART)
        transfers = S3DirectTransfers(store, copy_limit=1024 * 1024, copy_part=PART)
        item = blob(2 * PART + 12345, seed=b"large-copy")
        oid = Oid.parse(item.oid)
        upload_id = await _stage(transfers, oid, item.size, item.data)
        await transfers.verify_upload(oid, item.size, upload_id)
        assert await _body(store, oid) == item.data
        assert await _keys(store) == [store.location.key(oid)]


async def test_huge_objects_stay_proxied(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    _, transfers = direct
    assert await transfers.upload_action(Oid("a" * 64), 6 * 1024**3, 600, _upload_id()) is None


async def test_cleanup_removes_unverified_staged_uploads_only(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    store, transfers = direct
    kept, abandoned = blob(1000), blob(1001)
    await store.put(Oid.parse(kept.oid), kept.size, Source(kept.data, chunk=500))
    action = await transfers.upload_action(Oid.parse(abandoned.oid), abandoned.size, 600, _upload_id())
    assert action is not None
    assert await _put(action.href, action.header, abandoned.data) == 200
    assert (await store.cleanup(timedelta(hours=1), staged_older_than=timedelta(hours=1))).staged_objects == 0
    cleaned = await store.cleanup(timedelta(hours=1), staged_older_than=timedelta(seconds=-60))
    assert cleaned.staged_objects == 1
    assert await _keys(store) == [store.location.key(Oid.parse(kept.oid))]


async def test_proxied_upload_then_direct_download(direct: tuple[S3Store, S3DirectTransfers]) -> None:
    store, transfers = direct
    item = blob(PART + 10)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data, chunk=100_000))
    download = await transfers.download_action(oid, 600)
    async with aiohttp.ClientSession() as session, session.get(download.href) as response:
        assert hashlib.sha256(await response.read()).hexdigest() == item.oid
