"""Basic transfers: ``PUT`` and ``GET`` of ``…/info/lfs/objects/<oid>``."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.abc import AbstractStreamWriter

from lfsd.core.auth import Permission
from lfsd.core.errors import (
    BadRequest,
    LengthRequired,
    LfsError,
    PayloadTooLarge,
    RequestTimeout,
    SizeMismatch,
    Unprocessable,
)
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.http.auth import identify, link_token
from lfsd.http.body import read_body
from lfsd.http.errors import render, request_id
from lfsd.http.inflight import Slot
from lfsd.http.keys import ACCESS, INFLIGHT, SERVICE, SETTINGS, SIGNER
from lfsd.http.media import check_content_type
from lfsd.http.paths import oid_of, repo_path
from lfsd.http.ranges import Unsatisfiable, parse_range
from lfsd.http.wire import VerifyObjectRequest, parse_json

log = logging.getLogger("lfsd.http")


class ClientDisconnected(BadRequest):
    default_message = "the client disconnected before the body was complete"


@dataclass(frozen=True, slots=True)
class Target:
    repo_id: int
    oid: Oid
    size: int | None  # the declared size, for uploads
    user: str  # whose transfer this is, for the per-user cap


UPLOAD_TARGET = web.RequestKey("upload_target", Target)


async def _target(request: web.Request, op: Operation, needed: Permission) -> Target:
    """Authorize by a signed link (for exactly this repo, oid and operation) or by the caller's credentials."""
    path = repo_path(request)
    oid = oid_of(request)
    token = link_token(request)
    if token is not None:
        grant = request.app[SIGNER].verify(token, path, oid, op, int(time.time()))
        # The signature says what held when the batch was answered; revocation must not wait for the expiry.
        await request.app[ACCESS].admit_link(grant, needed)
        user = f"user:{grant.user_id}" if grant.user_id else f"anonymous:{request.remote}"
        return Target(grant.repo_id, oid, grant.size, user)
    identity = await identify(request)
    repo = await request.app[ACCESS].authorize(identity, path, needed)
    user = f"user:{identity.user_id}" if identity is not None else f"anonymous:{request.remote}"
    return Target(repo.id, oid, None, user)


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
    target = Target(target.repo_id, target.oid, size, target.user)
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
        try:
            async with asyncio.timeout(self._timeout):
                return await self._content.readany()
        except TimeoutError:
            raise RequestTimeout(f"no body data for {self._timeout:g} seconds") from None
        except (ClientPayloadError, ConnectionError) as exc:
            raise ClientDisconnected() from exc


async def upload(request: web.Request) -> web.Response:
    target = await _upload_target(request)
    assert target.size is not None
    inflight = request.app[INFLIGHT]
    with inflight.admit(target.user, request.app[SETTINGS].max_transfers_per_user):
        async with inflight.upload():
            await request.app[SERVICE].upload(target.repo_id, target.oid, target.size, _RequestBody(request))
    return web.Response(status=200)


async def download(request: web.Request) -> web.StreamResponse:
    target = await _target(request, Operation.DOWNLOAD, Permission.READ)
    slot = request.app[INFLIGHT].admit(target.user, request.app[SETTINGS].max_transfers_per_user)
    try:
        stored = await request.app[SERVICE].download(target.repo_id, target.oid)
        if stored.path is None:
            with slot:
                return await _stream(request, target, stored.size)
        # FileResponse sends with sendfile and answers Range (206, Content-Range) and unsatisfiable ranges (416).
        return _TrackedFileResponse(
            slot,
            stored.path,
            chunk_size=256 * 1024,
            headers={"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"},
        )
    except BaseException:
        slot.release()
        raise


async def _stream(request: web.Request, target: Target, size: int) -> web.StreamResponse:
    """A download from a store without local files, in bounded chunks, with one byte range if asked."""
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    try:
        wanted = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, length, status = (0, size, 200) if wanted is None else (wanted.start, wanted.length, 206)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    chunks = request.app[SERVICE].read(target.oid, start, length)
    # Fetch the first chunk before answering, so that a storage error can still become an LFS error.
    first = await anext(chunks, b"") if length else b""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    inflight = request.app[INFLIGHT]
    async with inflight.download():
        await response.prepare(request)
        if first:
            await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    return response


class _TrackedFileResponse(web.FileResponse):
    """Holds the transfer's slot and counts the download as in flight while the file is sent (prepare sends it all)."""

    def __init__(self, slot: Slot, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot = slot

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        with self._slot:
            if not isinstance(request, web.Request):
                return await super().prepare(request)
            async with request.app[INFLIGHT].download():
                return await super().prepare(request)


async def verify(request: web.Request) -> web.Response:
    """The verify action of a direct upload: ``{oid, size}``, authorized by the link the batch response gave."""
    target = await _target(request, Operation.VERIFY, Permission.WRITE)
    check_content_type(request)
    body = parse_json(VerifyObjectRequest, await read_body(request, 64 * 1024), "verify request")
    if body.oid != target.oid:
        raise Unprocessable("the oid in the body is not the one in the URL")
    if target.size is not None and body.size != target.size:
        raise SizeMismatch("the size in the body is not the one declared in the batch request")
    await request.app[SERVICE].verify(target.repo_id, target.oid, body.size, link_token(request))
    return web.Response(status=200)
