"""Personal access tokens: anyone's for server admins (``/api/v1/users/{name}/tokens``), one's own for every user
(``/api/v1/user/tokens``), and revocation by id (``/api/v1/tokens/{id}``)."""

from __future__ import annotations

from aiohttp import web

from lfsd.core.audit import Actor
from lfsd.core.directory import TokenInfo
from lfsd.core.tokens import Scope
from lfsd.http.admin_api import render
from lfsd.http.admin_api.edge import (
    actor,
    admin,
    cursor_id,
    limit,
    no_content,
    page,
    path_id,
    respond,
    user_name,
)
from lfsd.http.admin_api.models import NewToken, body


def _key(info: TokenInfo) -> tuple[int]:
    return (info.id,)


async def _list(request: web.Request, who: Actor, name: str) -> web.Response:
    size = limit(request)
    listed = await admin(request).list_tokens(who, name, after=cursor_id(request), limit=size + 1)
    return page("tokens", listed, size, _key, render.token)


async def _create(request: web.Request, who: Actor, name: str) -> web.Response:
    new = await body(request, NewToken, "token")
    info, secret = await admin(request).create_token(
        who, name, label=new.label, days=new.expires_days, scope=Scope.parse(new.scope)
    )
    # The secret is in this response only: it is stored as a digest.
    return respond({"token": render.token(info), "secret": secret}, 201)


async def _revoke_all(request: web.Request, who: Actor, name: str) -> web.Response:
    return respond({"revoked": await admin(request).revoke_all_tokens(who, name)})


async def list_tokens(request: web.Request) -> web.Response:
    return await _list(request, await actor(request), user_name(request))


async def create_token(request: web.Request) -> web.Response:
    return await _create(request, await actor(request), user_name(request))


async def revoke_all_tokens(request: web.Request) -> web.Response:
    return await _revoke_all(request, await actor(request), user_name(request))


async def list_own_tokens(request: web.Request) -> web.Response:
    who = await actor(request)
    return await _list(request, who, who.name)


async def create_own_token(request: web.Request) -> web.Response:
    who = await actor(request)
    return await _create(request, who, who.name)


async def revoke_own_tokens(request: web.Request) -> web.Response:
    who = await actor(request)
    return await _revoke_all(request, who, who.name)


async def revoke_token(request: web.Request) -> web.Response:
    who = await actor(request)
    await admin(request).revoke_token(who, path_id(request, "token"))
    return no_content()
