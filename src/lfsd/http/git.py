"""Git's smart HTTP protocol on the repository URLs: ``GET …/info/refs?service=…``, ``POST …/git-upload-pack``
and ``POST …/git-receive-pack``.

The same credentials, grants and answers as the LFS API (``AccessControl.authorize``: 401 with a challenge so git
asks for credentials, 403 for a reader pushing, 404 for a private repository to a user without access); the real
git does the rest (``GitRpc``), its input and output streamed through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from lfsd.core.errors import Forbidden, LfsError, PayloadTooLarge, UnsupportedMediaType
from lfsd.core.git import GitService, Pusher
from lfsd.http.auth import identify
from lfsd.http.body import read_chunk
from lfsd.http.errors import AUTHENTICATE_HEADER, request_id
from lfsd.http.keys import ACCESS, GIT_REPOS, GIT_RPC, SETTINGS
from lfsd.http.paths import REPO_PATTERN, repo_path

log = logging.getLogger("lfsd.http")

INFO_REFS_ROUTE: Final = f"/{REPO_PATTERN}/info/refs"
RPC_ROUTE: Final = f"/{REPO_PATTERN}/{{service:git-(?:upload|receive)-pack}}"
# What git sends in Git-Protocol (``version=2``, ``version=2:object-format=sha256``); anything else is dropped.
_PROTOCOL_RE: Final = re.compile(r"[A-Za-z0-9=:._,-]{1,256}")
NO_CACHE: Final = {
    "Cache-Control": "no-cache, max-age=0, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
}


def add_git_routes(app: web.Application) -> None:
    app.router.add_get(INFO_REFS_ROUTE, _plain_errors(info_refs))
    app.router.add_post(RPC_ROUTE, _plain_errors(rpc))


def _plain_errors(handler: Handler) -> Handler:
    """git prints a ``text/plain`` error body to its user (``remote: …``); LFS JSON it would not show."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LfsError as exc:
            headers = dict(exc.headers)
            if exc.status == 401:
                headers["WWW-Authenticate"] = AUTHENTICATE_HEADER
            return web.Response(
                text=f"{exc.message} (request {request_id(request)})\n",
                status=exc.status,
                headers=headers,
                content_type="text/plain",
            )

    return wrapped


def _pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def _protocol(request: web.Request) -> str | None:
    value = request.headers.get("Git-Protocol")
    return value if value is not None and _PROTOCOL_RE.fullmatch(value) else None


async def _authorize(request: web.Request, service: GitService) -> tuple[Path, Pusher | None]:
    """The bare repository (created when missing) and, for a push, who pushes."""
    path = repo_path(request)
    identity = await identify(request)
    pushing = service is GitService.RECEIVE_PACK
    # A server admin's first push creates the repository, as an LFS upload batch does.
    repo = await request.app[ACCESS].authorize(identity, path, service.needed, create=pushing)
    git_dir = await request.app[GIT_REPOS].ensure(repo.path)
    if pushing and identity is not None:
        return git_dir, Pusher(repo.id, identity.user_id, identity.name)
    return git_dir, None


async def info_refs(request: web.Request) -> web.StreamResponse:
    service = GitService.parse(request.query.get("service"))
    if service is None:
        raise Forbidden("lfsd serves Git's smart HTTP protocol only (git 1.6.6 or later)")
    git_dir, _ = await _authorize(request, service)
    protocol = _protocol(request)
    # Protocol v2 starts with its capabilities; v0 and v1 with the service line smart HTTP adds (as http-backend).
    v2 = service is GitService.UPLOAD_PACK and protocol is not None and "version=2" in protocol
    preamble = b"" if v2 else _pkt_line(f"# service={service}\n") + b"0000"
    output = request.app[GIT_RPC].advertise(service, git_dir, protocol)
    return await _stream(request, f"application/x-{service}-advertisement", preamble, output)


class _Body:
    """The request body as a ``ByteSource``: each read under the stall timeout; an inflated gzip body (aiohttp
    inflates it as it streams in, a bounded piece at a time) is cut at ``git_gzip_max_bytes``."""

    def __init__(self, request: web.Request) -> None:
        settings = request.app[SETTINGS]
        self._content = request.content
        self._timeout = settings.body_timeout
        gzipped = request.headers.get("Content-Encoding", "").strip().lower() in ("gzip", "x-gzip")
        self._limit = settings.git_gzip_max_bytes if gzipped else None
        self._total = 0

    async def read(self) -> bytes:
        chunk = await read_chunk(self._content, self._timeout)
        self._total += len(chunk)
        if self._limit is not None and self._total > self._limit:
            raise PayloadTooLarge(f"gzip request bodies may inflate to at most {self._limit} bytes")
        return chunk


async def rpc(request: web.Request) -> web.StreamResponse:
    service = GitService(request.match_info["service"])
    git_dir, pusher = await _authorize(request, service)
    expected = f"application/x-{service}-request"
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != expected:
        raise UnsupportedMediaType(f"Content-Type must be {expected}")
    output = request.app[GIT_RPC].rpc(service, git_dir, _Body(request), _protocol(request), pusher)
    return await _stream(request, f"application/x-{service}-result", b"", output)


async def _stream(
    request: web.Request, content_type: str, preamble: bytes, output: AsyncGenerator[bytes]
) -> web.StreamResponse:
    """Send git's output as it comes. Errors before its first byte (credentials, a stalled body, git failing to
    start) are answered normally; after it, the status is sent, so the connection is cut and git reports it."""
    async with aclosing(output):
        first = await anext(output, b"")
        response = web.StreamResponse(headers=NO_CACHE)
        response.content_type = content_type
        try:
            # Inside: a client gone before git answered (killed mid-push) fails here, and is no server error.
            await response.prepare(request)
            await response.write(preamble + first)
            async for chunk in output:
                await response.write(chunk)
        except (LfsError, ConnectionError) as exc:
            log.warning("git response cut: %s", exc, extra={"request_id": request_id(request)})
            _cut(request)
            return response
        except Exception:
            log.exception("git response cut", extra={"request_id": request_id(request)})
            _cut(request)
            return response
        await response.write_eof()
    return response


def _cut(request: web.Request) -> None:
    """End a response whose status is already sent: the client sees a broken transfer, never a complete one."""
    if request.transport is not None:
        request.transport.close()
