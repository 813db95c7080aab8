"""Credentials from request headers: HTTP Basic (password or token), Bearer tokens, and signed transfer links."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from lfsd.core.auth import Identity
from lfsd.core.errors import Unauthorized
from lfsd.core.names import InvalidUserName, UserName
from lfsd.http.client import client_address
from lfsd.http.keys import ACCESS
from lfsd.http.links import LINK_AUTH_SCHEME
from lfsd.http.state import USER

MAX_AUTHORIZATION_LENGTH = 4096


def _authorization(request: web.Request) -> tuple[str, str] | None:
    """``(scheme, credentials)``. Every scheme we accept is printable ASCII on the wire (RFC 9110 token68 and
    RFC 7617 base64): anything else is malformed, whatever bytes aiohttp decoded it from (surrogateescape)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION_LENGTH or not (header.isascii() and header.isprintable()):
        raise Unauthorized("malformed Authorization header")
    scheme, _, value = header.strip().partition(" ")
    if not value.strip():
        raise Unauthorized("malformed Authorization header")
    return scheme.lower(), value.strip()


def link_token(request: web.Request) -> str | None:
    """The signed link token, when the request carries one."""
    parsed = _authorization(request)
    if parsed is not None and parsed[0] == LINK_AUTH_SCHEME.lower():
        return parsed[1]
    return None


async def identify(request: web.Request) -> Identity | None:
    """The authenticated caller, or None when the request has no credentials. Bad credentials: 401."""
    identity = await _identify(request)
    if identity is not None:
        request[USER] = identity.name
    return identity


def _basic(value: str) -> tuple[UserName, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    name, sep, secret = decoded.partition(":")
    if not sep or not name or not secret:
        raise Unauthorized("malformed Basic credentials")
    try:
        return UserName.parse(name), secret
    except InvalidUserName:
        # No user can have this name: the same answer as a wrong password, and the database is never asked.
        raise Unauthorized("invalid credentials") from None


async def _identify(request: web.Request) -> Identity | None:
    parsed = _authorization(request)
    if parsed is None:
        return None
    scheme, value = parsed
    access = request.app[ACCESS]
    if scheme == "basic":
        name, secret = _basic(value)
        return await access.authenticate_basic(name, secret, client_address(request))
    if scheme == "bearer":
        return await access.authenticate_bearer(value)
    raise Unauthorized("unsupported authorization scheme")
