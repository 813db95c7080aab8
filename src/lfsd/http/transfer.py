"""Basic transfers: ``PUT`` and ``GET`` of ``…/info/lfs/objects/<oid>``."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from lfsd.core.auth import Permission
from lfsd.core.errors import (
    LengthRequired,
    LfsError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    SizeMismatch,
    Unprocessable,
)
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.ports import StoredObject
from lfsd.http.auth import identify, link_token
from lfsd.http.body import read_body, read_chunk
from lfsd.http.errors import render, request_id
from lfsd.http.inflight import Slot
from lfsd.http.keys import ACCESS, INFLIGHT, SERVICE, SETTINGS, SIGNER
from lfsd.http.links import verify_nonce
from lfsd.http.media import check_content_type
from lfsd.http.paths import oid_of, repo_path
from lfsd.http.ranges import ByteRange, Unsatisfiable, wanted_range
from lfsd.http.sendfile import DownloadStalled, send_now, send_range
from lfsd.http.wire import parse_verify_object
from lfsd.offload import in_thread

log = logging.getLogger("lfsd.http")


@dataclass(frozen=True, slots=True)
class Target:
    repo_id: int
    oid: Oid
    size: int | None  # the declared size, for uploads
    user: str  # whose transfer this is, for the per-user cap
    linked: bool = False  # authorized by a signed link (whose caller still stands), not by credentials
    user_id: int | None = None  # the signed-in user, recorded as the uploader (None: anonymous)


UPLOAD_TARGET = web.RequestKey("upload_target", Target)


async def _target(request: web.Request, op: Operation, needed: Permission) -> Target:
    """Authorize by a signed link (for exactly this repo, oid and operation) or by the caller's credentials."""
    path = repo_path(request)
    oid = oid_of(request)
    token = link_token(request)
    if token is not None:
        grant = request.app[SIGNER].verify(token, path, oid, op, int(time.time()))
        # The signature says what held when the batch was answered; revocation must not wait for the expiry.
        proves_object = await request.app[ACCESS].admit_link(grant, needed)
        user = f"user:{grant.user_id}" if grant.user_id else f"anonymous:{request.remote}"
        return Target(grant.repo_id, oid, grant.size, user, linked=proves_object, user_id=grant.user_id or None)
    identity = await identify(request)
    repo = await request.app[ACCESS].authorize(identity, path, needed)
    user = f"user:{identity.user_id}" if identity is not None else f"anonymous:{request.remote}"
    return Target(repo.id, oid, None, user, user_id=(identity.user_id or None) if identity is not None else None)


async def _upload_target(request: web.Request) -> Target:
    if UPLOAD_TARGET in request:
        return request[UPLOAD_TARGET]
    target = await _target(request, Operation.UPLOAD, Permission.WRITE)
    length = request.content_length
    size = target.size if target.size is not None else length
    if size is None:
        raise LengthRequired("Content-Length is required without a transfer link")
    if length is not None and length != size:
        raise SizeMismatch(f"Content-Length {length} does not match the declared size {size}")
    limit = request.app[SETTINGS].max_object_size
    if size > limit:
        raise PayloadTooLarge(f"objects are limited to {limit} bytes")
    target = Target(target.repo_id, target.oid, size, target.user, user_id=target.user_id)
    request[UPLOAD_TARGET] = target
    return target


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Check credentials and size before telling the client to send a body (``Expect: 100-continue``)."""
    try:
        await _upload_target(request)
    except LfsError as exc:
        return render(exc, request_id(request))
    if request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim response is not part of the body count
    return None


class _RequestBody:
    """The request body as a ``ByteSource``; a dropped or stalled connection becomes a domain error."""

    def __init__(self, request: web.Request) -> None:
        self._content = request.content
        self._timeout = request.app[SETTINGS].body_timeout

    async def read(self) -> bytes:
        return await read_chunk(self._content, self._timeout)


async def upload(request: web.Request) -> web.Response:
    target = await _upload_target(request)
    assert target.size is not None
    inflight = request.app[INFLIGHT]
    settings = request.app[SETTINGS]
    slot = await inflight.admit_waiting(target.user, settings.max_transfers_per_user, settings.transfer_queue_wait)
    with slot, inflight.upload():
        await request.app[SERVICE].upload(
            target.repo_id, target.oid, target.size, _RequestBody(request), target.user_id
        )
    return web.Response(status=200)


async def download(request: web.Request) -> web.StreamResponse:
    """The object, or the one byte range asked for: ``ranges.wanted_range`` decides for every store alike."""
    target = await _target(request, Operation.DOWNLOAD, Permission.READ)
    settings = request.app[SETTINGS]
    slot = await request.app[INFLIGHT].admit_waiting(
        target.user, settings.max_transfers_per_user, settings.transfer_queue_wait
    )
    stored: StoredObject | None = None
    try:
        stored = await request.app[SERVICE].open_download(target.repo_id, target.oid, linked=target.linked)
        size = stored.size
        # Objects are named by their content, so the oid is a strong validator for If-Range on every replica and
        # store.
        etag = f'"{target.oid}"'
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", "ETag": etag}
        try:
            wanted = wanted_range(request.headers.get("Range"), request.headers.get("If-Range"), size, etag)
        except Unsatisfiable:
            _close(stored)
            slot.release()
            return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        part = wanted or ByteRange(0, size)
        if wanted is not None:
            headers["Content-Range"] = wanted.content_range(size)
        status = 200 if wanted is None else 206
        if stored.file is not None:
            file: BinaryIO = stored.file
        elif stored.path is None:
            with slot:
                return await _stream(request, target, part, status, headers)
        else:
            file = await _opened(stored.path)
        return _SentFile(slot, file, part, status=status, headers=headers)
    except BaseException:
        if stored is not None:
            _close(stored)
        slot.release()
        raise


def _close(stored: StoredObject) -> None:
    if stored.file is not None:
        stored.file.close()


async def _opened(path: Path) -> BinaryIO:
    """A store that looks a file up without opening it: opened here, not while sending, so that a vanished or
    unreadable file is still an LFS error."""
    try:
        return await _open(path)
    except FileNotFoundError:
        raise NotFound("object does not exist") from None
    except OSError as exc:
        log.warning("cannot open a stored object: %s", exc)
        raise ServiceUnavailable("the object store is unavailable") from exc


async def _stream(
    request: web.Request, target: Target, part: ByteRange, status: int, headers: dict[str, str]
) -> web.StreamResponse:
    """A download from a store without local files, in bounded chunks."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = part.length
    if part.length == 0 or request.method == "HEAD":
        return response  # aiohttp sends the headers alone
    chunks = request.app[SERVICE].read(target.oid, part.start, part.length)
    # Fetch the first chunk before answering, so that a storage error can still become an LFS error.
    first = await anext(chunks, b"")
    stall = request.app[SETTINGS].body_timeout
    async with request.app[INFLIGHT].download():
        await response.prepare(request)
        try:
            await _write_unless_stalled(request, response, first, stall)
            async for chunk in chunks:
                await _write_unless_stalled(request, response, chunk, stall)
            await response.write_eof()
        except ConnectionError as exc:
            # The client went away or stopped reading: nothing can be answered any more on this connection.
            log.info("download ended early: %s", exc, extra={"event": "download_cut", "oid": str(target.oid)})
    return response


async def _write_unless_stalled(
    request: web.Request, response: web.StreamResponse, chunk: bytes, stall_seconds: float
) -> None:
    """One chunk (256 KiB at most): a client that takes none of it for the stall timeout is cut off."""
    try:
        async with asyncio.timeout(stall_seconds):
            await response.write(chunk)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise DownloadStalled(f"the client took no bytes for {stall_seconds:g} seconds") from None


async def _open(path: Path) -> BufferedReader:
    """``path`` opened for reading in a worker thread; if the request is cancelled meanwhile, the file is closed."""
    opening = asyncio.ensure_future(in_thread(path.open, "rb"))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[BufferedReader]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class _SentFile(web.StreamResponse):
    """A byte range of an open local file, sent with ``sendfile`` (no copy through Python); owns and closes the file.

    Holds the transfer's slot and counts the download as in flight while the file is sent (``prepare`` sends it all).
    """

    def __init__(self, slot: Slot, file: BinaryIO, part: ByteRange, *, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self.content_length = part.length
        self._slot = slot
        self._file = file
        self._part = part

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await super().prepare(request)  # sent already: aiohttp's answer for a second call
        try:
            with self._slot:
                if not isinstance(request, web.Request):
                    return await self._send(request)
                with request.app[INFLIGHT].download():
                    return await self._send(request)
        finally:
            # Closed here, on the loop: closing a file opened read-only does not wait for the disk, and a thread
            # hop per download cost more than the close (issue 17). Nothing to await, so a cancellation cannot skip it.
            self._file.close()

    async def _send(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        if self._part.length and request.method != "HEAD":
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("the client went away")
            sent = send_now(transport, self._file, self._part.start, self._part.length)
            start, left = self._part.start + sent, self._part.length - sent
            if left:
                # asyncio falls back to reading and writing where sendfile cannot work (TLS, other loops).
                stall = request.app[SETTINGS].body_timeout if isinstance(request, web.Request) else None
                if stall is None:
                    await asyncio.get_running_loop().sendfile(transport, self._file, start, left)
                else:
                    await send_range(transport, self._file, start, left, stall_seconds=stall)
        await super().write_eof()
        return writer


async def verify(request: web.Request) -> web.Response:
    """The verify action of a direct upload: ``{oid, size}``, authorized by the link the batch response gave."""
    target = await _target(request, Operation.VERIFY, Permission.WRITE)
    check_content_type(request)
    body = parse_verify_object(await read_body(request, 64 * 1024))
    if body.oid != target.oid:
        raise Unprocessable("the oid in the body is not the one in the URL")
    if target.size is not None and body.size != target.size:
        raise SizeMismatch("the size in the body is not the one declared in the batch request")
    nonce = verify_nonce(request)
    service = request.app[SERVICE]
    await service.verify(target.repo_id, target.oid, body.size, link_token(request), target.user_id, nonce=nonce)
    return web.Response(status=200)
