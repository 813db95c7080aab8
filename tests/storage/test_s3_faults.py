"""Faults in S3: a part that fails mid-upload aborts the multipart upload and leaves nothing; start-up errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from lfsd.core.errors import ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.storage.errors import StorageConfigError
from lfsd.storage.s3 import S3Location, S3Store
from lfsd.storage.s3_client import s3_client
from tests.s3server import S3Server
from tests.storage.test_contract import PART, Source
from tests.support import blob


class FaultyClient:
    """Wraps a real S3 client; the ``fail_part``-th ``upload_part`` call fails as S3 would under trouble."""

    def __init__(self, inner: Any, fail_part: int) -> None:
        self._inner = inner
        self._fail_part = fail_part
        self.parts_sent = 0
        self.aborted: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def upload_part(self, **kwargs: Any) -> Any:
        self.parts_sent += 1
        if self.parts_sent == self._fail_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
        return await self._inner.upload_part(**kwargs)

    async def abort_multipart_upload(self, **kwargs: Any) -> Any:
        self.aborted.append(kwargs["UploadId"])
        return await self._inner.abort_multipart_upload(**kwargs)


@pytest.mark.parametrize("fail_part", [1, 2, 4])
async def test_failed_part_aborts_the_multipart_upload(s3_server: S3Server, fail_part: int) -> None:
    bucket = s3_server.new_bucket()
    item = blob(PART * 5 + 123)
    oid = Oid.parse(item.oid)
    async with s3_client(endpoint_url=s3_server.endpoint, region=None, path_style=True, max_connections=10) as client:
        faulty = FaultyClient(client, fail_part)
        store = S3Store(faulty, S3Location(bucket, "p"), part_size=PART, parts_in_flight=2)
        with pytest.raises(ServiceUnavailable):
            await store.put(oid, item.size, Source(item.data, chunk=256 * 1024))
        assert len(faulty.aborted) == 1
        assert (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []
        assert await store.get(oid) is None
        # The store is fine afterwards.
        healthy = S3Store(client, S3Location(bucket, "p"), part_size=PART, parts_in_flight=2)
        await healthy.put(oid, item.size, Source(item.data, chunk=256 * 1024))
        assert await healthy.size_of(oid) == item.size


async def test_cleanup_aborts_only_old_multipart_uploads(s3_server: S3Server) -> None:
    from datetime import timedelta

    bucket = s3_server.new_bucket()
    async with s3_client(endpoint_url=s3_server.endpoint, region=None, path_style=True, max_connections=10) as client:
        store = S3Store(client, S3Location(bucket, "p"), part_size=PART)
        await client.create_multipart_upload(Bucket=bucket, Key="p/aa/bb/crashed")
        await client.create_multipart_upload(Bucket=bucket, Key="elsewhere/not-ours")
        # moto reports every upload as initiated on 2010-11-10, so "recent" here means younger than 50 years.
        assert (await store.cleanup(timedelta(days=365 * 50))).multipart_uploads == 0
        assert (await store.cleanup(timedelta(hours=1))).multipart_uploads == 1
        remaining = (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])
        assert [upload["Key"] for upload in remaining] == ["elsewhere/not-ours"]


async def test_missing_bucket_is_a_clear_start_up_error(s3_server: S3Server) -> None:
    async with s3_client(endpoint_url=s3_server.endpoint, region=None, path_style=True, max_connections=2) as client:
        with pytest.raises(StorageConfigError, match="does not exist"):
            await S3Store(client, S3Location("no-such-bucket-here", "")).verify_bucket()


async def test_unreachable_endpoint_is_a_clear_start_up_error() -> None:
    async with s3_client(endpoint_url="http://127.0.0.1:1", region=None, path_style=True, max_connections=2) as client:
        with pytest.raises(StorageConfigError, match="cannot be reached"):
            await S3Store(client, S3Location("bucket", "")).verify_bucket()
