"""Object bodies in any S3-compatible store (AWS S3, MinIO, Ceph RGW), through aiobotocore.

Uploads go through the one upload pipeline (``storage/ingest.py``) into one of two sinks: a multipart upload whose
parts are sent while the next ones are read (at most ``parts_in_flight`` at a time), completed only when the SHA-256
and the size match and aborted otherwise; or, below one part, a single PUT sent after verification. Nothing partial or
wrong ever appears under an object's key. botocore retries throttling and 5xx replies; a part is retried from its
buffer, never from the consumed request stream.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import mmap
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lfsd.storage.errors import StorageConfigError

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as missing:  # the s3 extra is not installed
    raise StorageConfigError("S3 storage needs the s3 extra: pip install 'lfsd[s3]'") from missing

from lfsd.core.batch import Action
from lfsd.core.errors import LfsError, NotFound, ServiceUnavailable, SizeMismatch
from lfsd.core.inventory import StoredBody
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, StoredObject
from lfsd.storage.buffers import BufferPool
from lfsd.storage.ingest import Sink, ingest, nothing_to_write

log = logging.getLogger("lfsd.storage")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
READ_CHUNK = 256 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
STAGING_DIR = "staging"
SNAPSHOT_SUFFIX = ".verifying"  # never a presigned key: those end in the 32-digit upload id
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject; larger objects are copied part by part (UploadPartCopy)
COPY_PART = 512 * 1024**2
PRESENCE_CHECKS_IN_FLIGHT = 16


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

    @property
    def staging_prefix(self) -> str:
        """Where direct uploads land before they are verified; never a shard name (those are two hex digits)."""
        return "/".join(part for part in (self.prefix, STAGING_DIR) if part) + "/"

    def staging_key(self, oid: Oid, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError("an upload id is 32 lowercase hex digits")
        return f"{self.staging_prefix}{oid}/{upload_id}"


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
        self,
        client: Any,
        location: S3Location,
        *,
        part_size: int = 8 * 1024 * 1024,
        parts_in_flight: int = 4,
        pool: BufferPool | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE or part_size % mmap.PAGESIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes and a multiple of {mmap.PAGESIZE}")
        self.client = client
        self.location = location
        self.part_size = part_size
        self.parts_in_flight = max(1, parts_in_flight)
        # Keep one upload's ring of parts idle, so back-to-back uploads do not map fresh buffers each time.
        ring = (self.parts_in_flight + 1) * part_size
        self.pool = pool or BufferPool(4 * 1024 * 1024, 64 * 1024 * 1024, max_idle_bytes=ring)

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
        with s3_errors("head_object"):
            try:
                head = await self.client.head_object(Bucket=self.location.bucket, Key=self.location.key(oid))
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise
        return int(head["ContentLength"])

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        """Those of ``oids`` the bucket holds: one HEAD each, a bounded number at a time."""
        gate = asyncio.Semaphore(PRESENCE_CHECKS_IN_FLIGHT)

        async def stored(oid: Oid) -> bool:
            async with gate:
                return await self.size_of(oid) is not None

        found = await asyncio.gather(*(stored(oid) for oid in oids))
        return {oid for oid, here in zip(oids, found, strict=True) if here}

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
            sink: Sink = _SinglePut(self, oid, size)
        else:
            sink = await self._multipart(oid, size)
        await ingest(source, size, oid, self.pool, sink)

    async def _multipart(self, oid: Oid, size: int) -> _Multipart:
        if -(-size // self.part_size) > MAX_PARTS:
            raise ServiceUnavailable("the object is too large for the configured S3 part size")
        key = self.location.key(oid)
        with s3_errors("create_multipart_upload"):
            created = await self.client.create_multipart_upload(
                Bucket=self.location.bucket, Key=key, ContentType="application/octet-stream"
            )
        return _Multipart(self, key, created["UploadId"])

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.location.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError, OSError) as exc:
            # `lfsd storage cleanup` removes it later.
            log.warning("could not abort multipart upload %s: %s", upload_id, type(exc).__name__)

    async def cleanup(self, older_than: timedelta, staged_older_than: timedelta | None = None) -> Cleaned:
        """Abort multipart uploads started before ``older_than`` ago (crashed processes), and remove staged direct
        uploads older than ``staged_older_than`` (their links have expired, so nobody can still verify them)."""
        cleaned = Cleaned(multipart_uploads=await self._abort_stale_uploads(datetime.now(UTC) - older_than))
        if staged_older_than is not None:
            cleaned.staged_objects = await self._remove_stale_staged(datetime.now(UTC) - staged_older_than)
        return cleaned

    async def _abort_stale_uploads(self, cutoff: datetime) -> int:
        aborted = 0
        params: dict[str, Any] = {"Bucket": self.location.bucket}
        if self.location.prefix:
            params["Prefix"] = self.location.prefix + "/"
        while True:
            with s3_errors("list_multipart_uploads"):
                listing = await self.client.list_multipart_uploads(**params)
            for upload in listing.get("Uploads", []):
                if _aware(upload["Initiated"]) < cutoff:
                    with s3_errors("abort_multipart_upload"):
                        await self.client.abort_multipart_upload(
                            Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    aborted += 1
            if not listing.get("IsTruncated"):
                return aborted
            params["KeyMarker"] = listing.get("NextKeyMarker")
            params["UploadIdMarker"] = listing.get("NextUploadIdMarker")

    async def _remove_stale_staged(self, cutoff: datetime) -> int:
        removed = 0
        params: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": self.location.staging_prefix}
        while True:
            with s3_errors("list_objects_v2"):
                listing = await self.client.list_objects_v2(**params)
            for item in listing.get("Contents", []):
                if _aware(item["LastModified"]) < cutoff:
                    with s3_errors("delete_object"):
                        await self.client.delete_object(Bucket=self.location.bucket, Key=item["Key"])
                    removed += 1
            if not listing.get("IsTruncated"):
                return removed
            params["ContinuationToken"] = listing["NextContinuationToken"]

    # Whole-store inventory (fsck, later GC): the ``StoreInventory`` port.

    async def listing(self) -> AsyncIterator[StoredBody]:
        """Every object key in oid order (S3 lists keys in byte order, and ``ab/cd/<oid>`` sorts as the oid);
        ``staging/`` and ``quarantine/`` are not shard names and are skipped."""
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        params: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": prefix}
        while True:
            with s3_errors("list_objects_v2"):
                listing = await self.client.list_objects_v2(**params)
            for item in listing.get("Contents", []):
                oid = _oid_of_key(item["Key"].removeprefix(prefix))
                if oid is not None:
                    yield StoredBody(oid, int(item["Size"]))
            if not listing.get("IsTruncated"):
                return
            params["ContinuationToken"] = listing["NextContinuationToken"]

    async def sizes(self, oids: Collection[Oid]) -> dict[Oid, int]:
        gate = asyncio.Semaphore(PRESENCE_CHECKS_IN_FLIGHT)

        async def size(oid: Oid) -> int | None:
            async with gate:
                return await self.size_of(oid)

        found = await asyncio.gather(*(size(oid) for oid in oids))
        return {oid: n for oid, n in zip(oids, found, strict=True) if n is not None}

    async def digests(self, bodies: Sequence[tuple[Oid, int]]) -> dict[Oid, str | None]:
        """A few GETs in flight at once (a batch is a few MiB at most): round trips, not bytes, cost here."""
        gate = asyncio.Semaphore(PRESENCE_CHECKS_IN_FLIGHT)

        async def digest(oid: Oid, size: int) -> str | None:
            hashed = hashlib.sha256()
            length = 0
            async with gate:
                try:
                    response = await self.client.get_object(Bucket=self.location.bucket, Key=self.location.key(oid))
                except ClientError as exc:
                    if _missing(exc):
                        return None
                    with s3_errors("get_object"):
                        raise
                async with response["Body"] as body:
                    while length <= size:  # a body longer than expected is read no further than one byte past
                        with s3_errors("get_object"):
                            chunk = await body.read(READ_CHUNK)
                        if not chunk:
                            break
                        hashed.update(chunk)
                        length += len(chunk)
            return hashed.hexdigest() if length == size else None

        found = await asyncio.gather(*(digest(oid, size) for oid, size in bodies))
        return {oid: value for (oid, _), value in zip(bodies, found, strict=True)}

    async def quarantine(self, oid: Oid) -> str | None:
        """Copy the object under ``quarantine/`` (server side), then delete its key."""
        size = await self.size_of(oid)
        if size is None:
            return None
        key = self.location.key(oid)
        target = "/".join(part for part in (self.location.prefix, QUARANTINE_DIR, f"{oid}.{time.time_ns()}") if part)
        try:
            await S3DirectTransfers(self)._copy(key, target, size)
        except NotFound:
            return None
        with s3_errors("delete_object"):
            await self.client.delete_object(Bucket=self.location.bucket, Key=key)
        return f"s3://{self.location.bucket}/{target}"

    async def delete(self, oids: Collection[Oid]) -> None:
        """Remove the objects' keys, a thousand per request (keys already gone are fine); raise if any failed."""
        keys = [self.location.key(oid) for oid in oids]
        for start in range(0, len(keys), 1000):
            batch = {"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True}
            with s3_errors("delete_objects"):
                answer = await self.client.delete_objects(Bucket=self.location.bucket, Delete=batch)
            if failed := answer.get("Errors"):
                first = failed[0]
                raise ServiceUnavailable(f"S3 refused to delete {len(failed)} objects: {first.get('Code')}")


@dataclass
class Cleaned:
    multipart_uploads: int = 0
    staged_objects: int = 0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _SinglePut:
    """An object smaller than one part: held whole in one buffer, sent in one PUT once it is verified."""

    buffers = 1

    def __init__(self, store: S3Store, oid: Oid, size: int) -> None:
        self._store = store
        self._key = store.location.key(oid)
        self._view = memoryview(b"")
        self.buffer_size = BufferPool.fitting(size)

    def write(self, view: memoryview) -> Awaitable[None]:
        self._view = view  # the pipeline keeps the buffer until commit or abort
        return nothing_to_write()

    async def commit(self, sha256: bytes) -> None:
        store = self._store
        with s3_errors("put_object"):
            await store.client.put_object(
                Bucket=store.location.bucket,
                Key=self._key,
                Body=_ViewReader(self._view),
                ContentLength=len(self._view),
                ContentType="application/octet-stream",
                ChecksumSHA256=base64.b64encode(sha256).decode("ascii"),
            )

    async def abort(self) -> None:
        """Nothing was sent."""


class _Multipart:
    """A multipart upload: parts sent while the next ones are read, completed only after verification.

    Memory is bounded by (parts in flight + 1) x part size whatever the object's size; botocore retries a part from
    its buffer, never from the consumed request stream.
    """

    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self._store = store
        self._key = key
        self._upload_id = upload_id
        self._etags: dict[int, str] = {}
        self._parts = 0
        self.buffer_size = store.part_size
        self.buffers = store.parts_in_flight + 1

    def write(self, view: memoryview) -> Awaitable[None]:
        self._parts += 1  # numbered here, in body order, whatever order the sends finish in
        return self._send(self._parts, view)

    async def _send(self, number: int, view: memoryview) -> None:
        store = self._store
        with s3_errors("upload_part"):
            reply = await store.client.upload_part(
                Bucket=store.location.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=_ViewReader(view),
                ContentLength=len(view),
            )
        self._etags[number] = reply["ETag"]

    async def commit(self, sha256: bytes) -> None:
        store = self._store
        parts = [{"ETag": self._etags[n], "PartNumber": n} for n in sorted(self._etags)]
        with s3_errors("complete_multipart_upload"):
            await store.client.complete_multipart_upload(
                Bucket=store.location.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )

    async def abort(self) -> None:
        await self._store._abort(self._key, self._upload_id)


class _Promotion:
    """A staged direct upload read back through the pipeline; committing copies it to the object's key."""

    buffers = 2

    def __init__(self, transfers: S3DirectTransfers, staged: str, oid: Oid, size: int, buffer_size: int) -> None:
        self._transfers = transfers
        self._staged = staged
        self._oid = oid
        self._size = size
        self.buffer_size = buffer_size

    def write(self, view: memoryview) -> Awaitable[None]:
        return nothing_to_write()

    async def commit(self, sha256: bytes) -> None:
        await self._transfers._copy(self._staged, self._transfers._store.location.key(self._oid), self._size)

    async def abort(self) -> None:
        """The staged copy is removed by the verify that read it, whatever the outcome."""


class _ObjectBody:
    """A stored object's body as a ``ByteSource``."""

    def __init__(self, body: Any) -> None:
        self._body = body

    async def read(self) -> bytes:
        with s3_errors("get_object"):
            chunk: bytes = await self._body.read(READ_CHUNK)
        return chunk


class S3DirectTransfers:
    """Presigned S3 requests instead of lfsd's own hrefs (direct mode).

    No client-supplied byte ever lands on, or removes, the key of a stored object. A presigned upload goes to a staging
    key of its own (``staging/<oid>/<upload id>``), bound to the SHA-256 (``x-amz-checksum-sha256``, which AWS checks
    and some S3-compatible stores do not) and a fixed ``Content-Type`` (git-lfs would otherwise guess one and break the
    signature). ``verify`` takes a server-side snapshot of the staging key, hashes the snapshot and, only when size and
    SHA-256 are right, copies it to the object's key (``UploadPartCopy`` above 5 GiB), then removes both. A failed
    verify removes only its own staging key; `lfsd storage cleanup` removes staging keys that were never verified.
    Objects above S3's single-PUT limit keep going through lfsd.
    """

    SINGLE_PUT_LIMIT = 5 * 1024**3

    def __init__(
        self,
        store: S3Store,
        *,
        trust_store_checksum: bool = False,
        copy_limit: int = COPY_LIMIT,
        copy_part: int = COPY_PART,
    ) -> None:
        self._store = store
        self._trust_checksum = trust_store_checksum
        self._copy_limit = copy_limit
        self._copy_part = copy_part

    async def download_action(self, oid: Oid, ttl_seconds: int) -> Action:
        with s3_errors("presign"):
            url = await self._store.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._store.location.bucket, "Key": self._store.location.key(oid)},
                ExpiresIn=ttl_seconds,
            )
        return Action(href=url, header={}, expires_in=ttl_seconds)

    async def upload_action(self, oid: Oid, size: int, ttl_seconds: int, upload_id: str) -> Action | None:
        if size > self.SINGLE_PUT_LIMIT:
            return None
        checksum = _b64_checksum(oid)
        with s3_errors("presign"):
            url = await self._store.client.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self._store.location.bucket,
                    "Key": self._store.location.staging_key(oid, upload_id),
                    "ContentType": "application/octet-stream",
                    "ChecksumSHA256": checksum,
                },
                ExpiresIn=ttl_seconds,
            )
        header = {"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": checksum}
        return Action(href=url, header=header, expires_in=ttl_seconds)

    async def verify_upload(self, oid: Oid, size: int, upload_id: str) -> None:
        """Promote the staged upload to the object's key if it has exactly this size and SHA-256; always unstage."""
        staged = self._store.location.staging_key(oid, upload_id)
        # The presigned URL stays usable until it expires, so the staged bytes may change while we look at them.
        # What is hashed is therefore a server-side snapshot under a key no presigned URL names, and what is
        # promoted is that snapshot (CopySourceIfMatch would do, but not every S3-compatible store honours it).
        # The snapshot is this call's own: a verify link can be sent again while the first call still hashes, after
        # other bytes were put to the same URL, and a shared snapshot would then be overwritten between the first
        # call's hash and its promotion (tests/storage/test_s3_direct.py replays it).
        snapshot = f"{staged}.{secrets.token_hex(8)}{SNAPSHOT_SUFFIX}"
        try:
            if await self._checked_by_store(staged, oid, size):
                # The store refuses any body whose SHA-256 is not the signed one.
                await self._copy(staged, self._store.location.key(oid), size)
            else:
                await self._copy(staged, snapshot, size)
                await self._promote(snapshot, oid, size)
        finally:
            await asyncio.shield(self._remove(staged, snapshot))

    async def _checked_by_store(self, key: str, oid: Oid, size: int) -> bool:
        """Whether the staged object may be taken as is; raises when it is missing or has the wrong size."""
        store = self._store
        with s3_errors("head_object"):
            try:
                head = await store.client.head_object(Bucket=store.location.bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if _missing(exc):
                    raise NotFound("the object was not uploaded") from None
                raise
        if int(head["ContentLength"]) != size:
            raise SizeMismatch("the uploaded object does not have the declared size")
        # AWS S3 refuses a body whose SHA-256 differs from the signed header; moto, older MinIO and some Ceph
        # versions store whatever arrives (and may echo the claimed checksum): only the operator can say which.
        return self._trust_checksum and head.get("ChecksumSHA256") == _b64_checksum(oid)

    async def _promote(self, snapshot: str, oid: Oid, size: int) -> None:
        """Read the snapshot through the upload pipeline, which copies it to the object's key only if it is right."""
        store = self._store
        with s3_errors("get_object"):
            response = await store.client.get_object(Bucket=store.location.bucket, Key=snapshot)
        sink = _Promotion(self, snapshot, oid, size, store.pool.size_for(size))
        async with response["Body"] as body:
            await ingest(_ObjectBody(body), size, oid, store.pool, sink)

    async def _copy(self, source_key: str, target_key: str, size: int) -> None:
        """A server-side copy; into the object's key this only ever writes bytes proven to be the object.

        The object's key may already hold this object (another repository verified it first): the copy then
        writes the same bytes again, which no reader can tell from before.
        """
        store = self._store
        source = {"Bucket": store.location.bucket, "Key": source_key}
        try:
            if size <= self._copy_limit:
                with s3_errors("copy_object"):
                    await store.client.copy_object(
                        Bucket=store.location.bucket,
                        Key=target_key,
                        CopySource=source,
                        ContentType="application/octet-stream",
                        MetadataDirective="REPLACE",
                    )
            else:
                await self._copy_in_parts(source, target_key, size)
        except ServiceUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _missing(cause):
                raise NotFound("the object was not uploaded") from None
            raise

    async def _copy_in_parts(self, source: dict[str, str], final: str, size: int) -> None:
        store = self._store
        part = max(self._copy_part, -(-size // MAX_PARTS))
        with s3_errors("create_multipart_upload"):
            created = await store.client.create_multipart_upload(
                Bucket=store.location.bucket, Key=final, ContentType="application/octet-stream"
            )
        upload_id = created["UploadId"]
        completed = False
        try:
            parts = []
            for number, start in enumerate(range(0, size, part), start=1):
                end = min(size, start + part) - 1
                with s3_errors("upload_part_copy"):
                    reply = await store.client.upload_part_copy(
                        Bucket=store.location.bucket,
                        Key=final,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=source,
                        CopySourceRange=f"bytes={start}-{end}",
                    )
                parts.append({"ETag": reply["CopyPartResult"]["ETag"], "PartNumber": number})
            with s3_errors("complete_multipart_upload"):
                await store.client.complete_multipart_upload(
                    Bucket=store.location.bucket, Key=final, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            completed = True
        finally:
            if not completed:
                await asyncio.shield(store._abort(final, upload_id))

    async def _remove(self, *keys: str) -> None:
        for key in keys:
            try:
                await self._store.client.delete_object(Bucket=self._store.location.bucket, Key=key)
            except (ClientError, BotoCoreError, OSError) as exc:
                # `lfsd storage cleanup` removes it later; the verify's own outcome stands.
                log.warning("could not remove staged upload %s: %s", key, type(exc).__name__)


def _b64_checksum(oid: Oid) -> str:
    return base64.b64encode(bytes.fromhex(oid)).decode("ascii")


QUARANTINE_DIR = "quarantine"  # beside the shards: fsck moves bodies that fail their check here
_OBJECT_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")


def _oid_of_key(relative: str) -> Oid | None:
    """The oid of an object key (``ab/cd/abcd…``, below the prefix), or None for any other key."""
    match = _OBJECT_KEY.fullmatch(relative)
    if match is None or not match[3].startswith(match[1] + match[2]):
        return None
    return Oid.parse(match[3])
