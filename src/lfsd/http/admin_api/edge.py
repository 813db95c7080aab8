"""What every admin API handler shares: the app keys, the caller as an ``Actor``, path and query values parsed at the
edge, cursors and JSON responses (bodies: ``models.body``). No pydantic here: ``app.py`` imports this module."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from aiohttp import web

from lfsd.core.admin import Administration
from lfsd.core.audit import Actor
from lfsd.core.errors import InvalidRepoPath, NotFound, Unauthorized
from lfsd.core.locks import InvalidCursor, parse_limit
from lfsd.core.names import InvalidUserName, UserName
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.usage import UsageService
from lfsd.http.auth import identify
from lfsd.http.client import client_address
from lfsd.http.media import LFS_JSON

ADMIN = web.AppKey("admin", Administration)
USAGE = web.AppKey("admin_usage", UsageService)
SSH_KEYS = web.AppKey("admin_ssh_keys", SshKeyAdministration)
ACTOR = web.RequestKey("admin_actor", Actor)

MAX_BODY: Final = 64 * 1024
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_CURSOR_LENGTH: Final = 2048
MAX_ID: Final = 2**31 - 1  # every id column is a 32-bit INTEGER
JSON_TYPES: Final = frozenset({"application/json", LFS_JSON})

T = TypeVar("T")
Key = tuple[str | int, ...]


def admin(request: web.Request) -> Administration:
    return request.app[ADMIN]


async def actor(request: web.Request) -> Actor:
    """The authenticated caller (401 without credentials). Server admins act as such only with an admin token."""
    if ACTOR in request:
        return request[ACTOR]
    identity = await identify(request)
    if identity is None:
        raise Unauthorized()
    request[ACTOR] = Actor.api(identity, client_address(request))
    return request[ACTOR]


def respond(document: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(document, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def user_name(request: web.Request) -> UserName:
    """The ``{name}`` in the path; a name no user can have names no user: 404."""
    try:
        return UserName.parse(request.match_info["name"])
    except InvalidUserName:
        raise NotFound("no such user") from None


def repo_path(request: web.Request) -> RepoPath:
    return RepoPath.parse(request.match_info["repo"])


def path_id(request: web.Request, what: str) -> int:
    """A positive id from the path; anything else names nothing: 404."""
    text = request.match_info["id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        raise NotFound(f"no {what} {text!r}")
    return int(text)


# -- paging: opaque keyset cursors, as the Locking API's ----------------------------------------------------------


def encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(request: web.Request, kinds: tuple[type, ...]) -> Key | None:
    """The position ``?cursor=`` names (None: the first page); a cursor this API did not hand out is 422."""
    text = request.query.get("cursor")
    if not text:
        return None
    try:
        if len(text) > MAX_CURSOR_LENGTH or not text.isascii():
            raise ValueError(text)
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidCursor() from None
    if (
        not isinstance(key, list)
        or len(key) != len(kinds)
        or not all(type(part) is kind for part, kind in zip(key, kinds, strict=True))
    ):
        raise InvalidCursor()
    return tuple(key)


def _parts(request: web.Request, kinds: tuple[type, ...]) -> Key | None:
    key = decode_cursor(request, kinds)
    if key is not None and any(isinstance(part, int) and not 0 <= part <= MAX_ID for part in key):
        raise InvalidCursor()
    return key


def cursor_id(request: web.Request) -> int | None:
    """A cursor naming an id (tokens, locks, audit entries)."""
    key = _parts(request, (int,))
    return None if key is None else int(key[0])


def cursor_name(request: web.Request) -> UserName | None:
    """A cursor naming a user."""
    key = _parts(request, (str,))
    try:
        return None if key is None else UserName.parse(key[0])
    except InvalidUserName:
        raise InvalidCursor() from None


def cursor_path(request: web.Request) -> RepoPath | None:
    """A cursor naming a repository."""
    key = _parts(request, (str,))
    try:
        return None if key is None else RepoPath.parse(key[0])
    except InvalidRepoPath:
        raise InvalidCursor() from None


def cursor_grant(request: web.Request) -> tuple[RepoPath, UserName] | None:
    """A cursor naming a grant: its repository and its user."""
    key = _parts(request, (str, str))
    try:
        return None if key is None else (RepoPath.parse(key[0]), UserName.parse(key[1]))
    except (InvalidRepoPath, InvalidUserName):
        raise InvalidCursor() from None


def limit(request: web.Request) -> int:
    """``?limit=``: 1 to 1000, 100 when absent; 422 otherwise."""
    return parse_limit(request.query.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)


def page(
    name: str, items: Sequence[T], size: int, key: Callable[[T], Key], render: Callable[[T], dict[str, object]]
) -> web.Response:
    """One page of a list fetched with ``size + 1`` rows: the extra row only says that more follow."""
    shown = items[:size]
    document: dict[str, object] = {name: [render(item) for item in shown]}
    if len(items) > size:
        document["next_cursor"] = encode_cursor(key(shown[-1]))
    return respond(document)
