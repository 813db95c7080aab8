"""Object bodies in any S3-compatible store (AWS S3, MinIO, Ceph RGW), through aiobotocore.

Uploads stream into a multipart upload: parts are read into pooled buffers, hashed in order, and sent with at most
``parts_in_flight`` at a time, so memory per upload is bounded by (parts in flight + 1) x part size whatever the
object's size. The upload is completed only when the SHA-256 and the size match; on a mismatch, a client that goes
away, or any error it is aborted, so nothing partial or wrong ever appears under the object's key. Objects smaller
than one part go up in a single PUT, after they are verified. botocore retries throttling and 5xx replies; a part is
retried from its buffer, never from the consumed request stream.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import mmap
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lfsd.core.batch import Action
from lfsd.core.errors import ChecksumMismatch, LfsError, NotFound, ServiceUnavailable, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, StoredObject
from lfsd.offload import in_thread
from lfsd.storage.errors import StorageConfigError

log = logging.getLogger("lfsd.storage")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
READ_CHUNK = 256 * 1024
SMALL_OBJECT = 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ValueError("an S3 storage URL looks like s3://BUCKET[/PREFIX]")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError("an S3 storage URL needs a bucket: s3://BUCKET[/PREFIX]")
        return cls(bucket, prefix.strip("/"))

    def key(self, oid: Oid) -> str:
        first, second = oid.shard
        return "/".join(part for part in (self.prefix, first, second, oid) if part)


class _ViewReader(io.RawIOBase):
    """A part buffer as the file-like body botocore wants, without copying it."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), len(self._view) - self._pos)
        buffer[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._view)


@contextmanager
def s3_errors(operation: str) -> Iterator[None]:
    """botocore's errors become domain errors here; their text goes to the log, never to a client."""
    try:
        yield
    except LfsError:
        raise
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        log.warning("S3 %s failed: %s", operation, code or exc)
        raise ServiceUnavailable("the object store is unavailable") from exc
    except (TimeoutError, BotoCoreError, OSError) as exc:
        log.warning("S3 %s failed: %s", operation, type(exc).__name__)
        raise ServiceUnavailable("the object store is unavailable") from exc


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code", "")) in _MISSING or status == 404


class S3Store:
    """``client`` is an aiobotocore S3 client, opened and closed by the application's lifespan."""

    def __init__(
        self, client: Any, location: S3Location, *, part_size: int = 8 * 1024 * 1024, parts_in_flight: int = 4
    ) -> None:
        if part_size < MIN_PART_SIZE or part_size % mmap.PAGESIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes and a multiple of {mmap.PAGESIZE}")
        self.client = client
        self.location = location
        self.part_size = part_size
        self.parts_in_flight = max(1, parts_in_flight)
        self._idle: list[mmap.mmap] = []

    # -- buffers: (parts in flight + 1) per upload, a few kept for the next upload
    def _take(self) -> mmap.mmap:
        return self._idle.pop() if self._idle else mmap.mmap(-1, self.part_size)

    def _give(self, buffer: mmap.mmap) -> None:
        if len(self._idle) < self.parts_in_flight + 1:
            self._idle.append(buffer)

    async def check(self) -> None:
        with s3_errors("head_bucket"):
            await self.client.head_bucket(Bucket=self.location.bucket)

    async def verify_bucket(self) -> None:
        """At start-up: a missing bucket or denied access is a configuration error, said plainly."""
        try:
            await self.client.head_bucket(Bucket=self.location.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchBucket") or status == 404:
                raise StorageConfigError(f"the S3 bucket {self.location.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied") or status == 403:
                raise StorageConfigError(f"access to the S3 bucket {self.location.bucket!r} is denied") from None
            raise StorageConfigError(f"the S3 bucket {self.location.bucket!r} cannot be used ({code})") from None
        except (BotoCoreError, OSError) as exc:
            raise StorageConfigError(f"the S3 endpoint cannot be reached ({type(exc).__name__})") from None

    async def size_of(self, oid: Oid) -> int | None:
        try:
            with s3_errors("head_object"):
                try:
                    head = await self.client.head_object(Bucket=self.location.bucket, Key=self.location.key(oid))
                except ClientError as exc:
                    if _missing(exc):
                        return None
                    raise
        except LfsError:
            raise
        return int(head["ContentLength"])

    async def get(self, oid: Oid) -> StoredObject | None:
        size = await self.size_of(oid)
        return None if size is None else StoredObject(size=size)

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        with s3_errors("get_object"):
            response = await self.client.get_object(
                Bucket=self.location.bucket,
                Key=self.location.key(oid),
                Range=f"bytes={start}-{start + length - 1}",
            )
        async with response["Body"] as body:
            while True:
                with s3_errors("get_object"):
                    chunk = await body.read(READ_CHUNK)
                if not chunk:
                    return
                yield chunk

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        if size < self.part_size:
            await self._put_single(oid, size, source)
        else:
            await self._put_multipart(oid, size, source)

    async def _fill(self, buffer: mmap.mmap | bytearray, source: ByteSource, state: _Received) -> int:
        filled = 0
        while filled < len(buffer):
            if not state.leftover:
                chunk = await source.read()
                if not chunk:
                    break
                state.total += len(chunk)
                if state.total > state.size:
                    raise SizeMismatch("the request body is longer than the declared size")
                state.leftover = memoryview(chunk)
            n = min(len(state.leftover), len(buffer) - filled)
            buffer[filled : filled + n] = state.leftover[:n]
            state.leftover = state.leftover[n:]
            filled += n
        return filled

    async def _put_single(self, oid: Oid, size: int, source: ByteSource) -> None:
        # Small objects get a buffer of their own size, not a whole part.
        buffer: mmap.mmap | bytearray = bytearray(size) if size < SMALL_OBJECT else self._take()
        try:
            state = _Received(size)
            filled = await self._fill(buffer, source, state)
            if filled == len(buffer) and await source.read():
                raise SizeMismatch("the request body is longer than the declared size")
            view = memoryview(buffer)[:filled]
            digest = await in_thread(lambda: hashlib.sha256(view).digest())
            _verify(state.total, size, digest, oid)
            with s3_errors("put_object"):
                await self.client.put_object(
                    Bucket=self.location.bucket,
                    Key=self.location.key(oid),
                    Body=_ViewReader(view),
                    ContentLength=filled,
                    ContentType="application/octet-stream",
                    ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                )
        finally:
            if isinstance(buffer, mmap.mmap):
                self._give(buffer)

    async def _put_multipart(self, oid: Oid, size: int, source: ByteSource) -> None:
        if -(-size // self.part_size) > MAX_PARTS:
            raise ServiceUnavailable("the object is too large for the configured S3 part size")
        key = self.location.key(oid)
        with s3_errors("create_multipart_upload"):
            created = await self.client.create_multipart_upload(
                Bucket=self.location.bucket, Key=key, ContentType="application/octet-stream"
            )
        upload_id = created["UploadId"]
        digest = hashlib.sha256()
        state = _Received(size)
        free: asyncio.Queue[mmap.mmap] = asyncio.Queue()
        for _ in range(self.parts_in_flight + 1):
            free.put_nowait(self._take())
        owned = free.qsize()
        sending: list[asyncio.Task[None]] = []
        etags: dict[int, str] = {}
        completed = False
        try:
            number = 0
            while True:
                buffer = await free.get()
                filled = await self._fill(buffer, source, state)
                if not filled:
                    free.put_nowait(buffer)
                    break
                view = memoryview(buffer)[:filled]
                await in_thread(digest.update, view)
                number += 1
                sending.append(asyncio.create_task(self._send_part(key, upload_id, number, buffer, view, etags, free)))
                _raise_failed(sending)
                if filled < len(buffer):
                    break
            if sending:
                await asyncio.gather(*sending)
            _verify(state.total, size, digest.digest(), oid)
            parts = [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]
            with s3_errors("complete_multipart_upload"):
                await self.client.complete_multipart_upload(
                    Bucket=self.location.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            completed = True
        finally:
            for task in sending:
                task.cancel()
            if sending:
                await asyncio.gather(*sending, return_exceptions=True)
            if not completed:
                await asyncio.shield(self._abort(key, upload_id))
            while owned and not free.empty():
                self._give(free.get_nowait())
                owned -= 1

    async def _send_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        buffer: mmap.mmap,
        view: memoryview,
        etags: dict[int, str],
        free: asyncio.Queue[mmap.mmap],
    ) -> None:
        try:
            with s3_errors("upload_part"):
                reply = await self.client.upload_part(
                    Bucket=self.location.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=_ViewReader(view),
                    ContentLength=len(view),
                )
            etags[number] = reply["ETag"]
        finally:
            free.put_nowait(buffer)

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.location.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError, OSError) as exc:
            # `lfsd storage cleanup` removes it later.
            log.warning("could not abort multipart upload %s: %s", upload_id, type(exc).__name__)

    async def cleanup(self, older_than: timedelta) -> int:
        """Abort multipart uploads under the prefix started before ``older_than`` ago (crashed processes)."""
        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        params: dict[str, Any] = {"Bucket": self.location.bucket}
        if self.location.prefix:
            params["Prefix"] = self.location.prefix + "/"
        while True:
            with s3_errors("list_multipart_uploads"):
                listing = await self.client.list_multipart_uploads(**params)
            for upload in listing.get("Uploads", []):
                initiated = upload["Initiated"]
                if initiated.tzinfo is None:
                    initiated = initiated.replace(tzinfo=UTC)
                if initiated < cutoff:
                    with s3_errors("abort_multipart_upload"):
                        await self.client.abort_multipart_upload(
                            Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    aborted += 1
            if not listing.get("IsTruncated"):
                return aborted
            params["KeyMarker"] = listing.get("NextKeyMarker")
            params["UploadIdMarker"] = listing.get("NextUploadIdMarker")


@dataclass
class _Received:
    size: int
    total: int = 0
    leftover: memoryview = field(default_factory=lambda: memoryview(b""))


def _verify(total: int, size: int, digest: bytes, oid: Oid) -> None:
    if total != size:
        raise SizeMismatch(f"the request body has {total} bytes, the declared size is {size}")
    if digest.hex() != oid:
        raise ChecksumMismatch()


def _raise_failed(tasks: list[asyncio.Task[None]]) -> None:
    """A part that failed ends the upload now, not after the whole body has been read."""
    for task in tasks:
        if task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error


class S3DirectTransfers:
    """Presigned S3 requests instead of lfsd's own hrefs (direct mode).

    An upload URL is bound to the object: the SHA-256 (``x-amz-checksum-sha256``, which S3 checks) and a fixed
    ``Content-Type`` are signed, and sent by the client from the action's ``header`` (git-lfs would otherwise guess a
    content type and break the signature). Objects above S3's single-PUT limit, and objects the store already has
    (a PUT would overwrite a verified object), keep going through lfsd.
    """

    SINGLE_PUT_LIMIT = 5 * 1024**3

    def __init__(self, store: S3Store) -> None:
        self._store = store

    async def download_action(self, oid: Oid, ttl_seconds: int) -> Action:
        with s3_errors("presign"):
            url = await self._store.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._store.location.bucket, "Key": self._store.location.key(oid)},
                ExpiresIn=ttl_seconds,
            )
        return Action(href=url, header={}, expires_in=ttl_seconds)

    async def upload_action(self, oid: Oid, size: int, ttl_seconds: int) -> Action | None:
        if size > self.SINGLE_PUT_LIMIT or await self._store.size_of(oid) is not None:
            return None
        checksum = base64.b64encode(bytes.fromhex(oid)).decode("ascii")
        with s3_errors("presign"):
            url = await self._store.client.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self._store.location.bucket,
                    "Key": self._store.location.key(oid),
                    "ContentType": "application/octet-stream",
                    "ChecksumSHA256": checksum,
                },
                ExpiresIn=ttl_seconds,
            )
        header = {"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": checksum}
        return Action(href=url, header=header, expires_in=ttl_seconds)

    async def verify_upload(self, oid: Oid, size: int) -> None:
        """The object must be there with this size and content; wrong content is deleted, never linked."""
        store = self._store
        key = store.location.key(oid)
        with s3_errors("head_object"):
            try:
                head = await store.client.head_object(Bucket=store.location.bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if _missing(exc):
                    raise NotFound("the object was not uploaded") from None
                raise
        if int(head["ContentLength"]) != size:
            await self._discard(key)
            raise SizeMismatch("the uploaded object does not have the declared size")
        stored = head.get("ChecksumSHA256")
        expected = base64.b64encode(bytes.fromhex(oid)).decode("ascii")
        if stored == expected:
            return
        # The store kept no SHA-256 (not every S3-compatible store does): hash the object itself.
        digest = hashlib.sha256()
        async for chunk in store.read(oid, 0, size):
            await in_thread(digest.update, chunk)
        if digest.hexdigest() != oid:
            await self._discard(key)
            raise ChecksumMismatch()

    async def _discard(self, key: str) -> None:
        with s3_errors("delete_object"):
            await self._store.client.delete_object(Bucket=self._store.location.bucket, Key=key)
