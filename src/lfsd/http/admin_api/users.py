"""``/api/v1/users``: the users, their grants, and a user's own password."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from lfsd.core.audit import Actor
from lfsd.core.directory import GrantInfo, UserInfo
from lfsd.core.errors import Unprocessable
from lfsd.core.names import UserName
from lfsd.http.admin_api import render
from lfsd.http.admin_api.edge import (
    actor,
    admin,
    cursor_grant,
    cursor_name,
    limit,
    no_content,
    page,
    respond,
    user_name,
)
from lfsd.http.admin_api.models import NewUser, PasswordChange, UserChange, body
from lfsd.http.client import client_address
from lfsd.http.keys import ACCESS


async def _shown(request: web.Request, who: Actor, name: str) -> web.Response:
    info, _ = await admin(request).show_user(who, name)
    return respond(render.user(info))


async def list_users(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    users = await admin(request).list_users(who, after=cursor_name(request), limit=size + 1)

    def key(info: UserInfo) -> tuple[str]:
        return (info.name,)

    return page("users", users, size, key, render.user)


async def add_user(request: web.Request) -> web.Response:
    who = await actor(request)
    new = await body(request, NewUser, "user")
    name = UserName.parse(new.name)
    await admin(request).add_user(who, name, is_admin=new.admin, password=new.password)
    response = await _shown(request, who, name)
    response.set_status(201)
    response.headers["Location"] = f"/api/v1/users/{quote(name, safe='')}"
    return response


async def show_user(request: web.Request) -> web.Response:
    return await _shown(request, await actor(request), user_name(request))


async def change_user(request: web.Request) -> web.Response:
    who = await actor(request)
    name = user_name(request)
    change = await body(request, UserChange, "user change")
    given = change.model_fields_set
    if not given:
        raise Unprocessable("invalid user change: nothing to change (admin, disabled or password)")
    if change.admin is not None:
        await admin(request).set_admin(who, name, change.admin)
    if change.disabled is not None:
        await admin(request).set_disabled(who, name, change.disabled)
    if "password" in given:
        await admin(request).set_password(who, name, change.password)
    return await _shown(request, who, name)


async def delete_user(request: web.Request) -> web.Response:
    await admin(request).delete_user(await actor(request), user_name(request))
    return no_content()


async def user_grants(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    grants = await admin(request).user_grants(who, user_name(request), after=cursor_grant(request), limit=size + 1)

    def key(info: GrantInfo) -> tuple[str, str]:
        return (str(info.repo_path), info.user_name)

    return page("grants", grants, size, key, render.grant)


async def change_own_password(request: web.Request) -> web.Response:
    """Self-service: the caller's own password, with the current one (a token alone cannot take over an account)."""
    who = await actor(request)
    change = await body(request, PasswordChange, "password change")
    access = request.app[ACCESS]

    async def current_ok() -> bool:
        return await access.verify_password(who.name, change.current_password, client_address(request))

    await admin(request).change_own_password(who, change.new_password, current_ok)
    return no_content()
