"""Signing in and out, the home page, and the person's own tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lfsd.core.errors import BadRequest, Unauthorized
from lfsd.core.portal import visible_repos
from lfsd.core.tokens import Scope
from lfsd.ui.forms import actor, form, safe_next, see_other, signed_in, text
from lfsd.ui.keys import SESSION, SESSION_ID, UI
from lfsd.ui.security import LOGIN_COOKIE, PREFIX, SESSION_COOKIE, clear_cookie, login_nonce, page, render, set_cookie


def _login_page(request: web.Request, *, error: str | None = None, name: str = "", status: int = 200) -> web.Response:
    nonce = login_nonce(request)
    context = {"login_csrf": nonce, "error": error, "name": name, "next": safe_next(request.query.get("next"))}
    response = render(request, "login.html", context, status=status)
    set_cookie(request, response, LOGIN_COOKIE, nonce, 3600)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is not None:
        see_other(safe_next(request.query.get("next")))
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    data = await form(request)
    name = data.get("name", "")[:200]
    services = request.config_dict[UI]
    try:
        session_id, _ = await services.sessions.sign_in(name, data.get("password", ""), services.address(request))
    except Unauthorized:
        return _login_page(request, error="Wrong user name or password.", name=name, status=401)
    response = web.HTTPSeeOther(safe_next(data.get("next")))
    set_cookie(request, response, SESSION_COOKIE, session_id, services.settings.ui_session_ttl)
    clear_cookie(request, response, LOGIN_COOKIE)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session_id = request.get(SESSION_ID)
    if session_id is not None:
        await request.config_dict[UI].sessions.sign_out(session_id)
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    clear_cookie(request, response, SESSION_COOKIE)
    raise response


def clone_url(request: web.Request, path: str) -> str:
    base = request.config_dict[UI].settings.public_url or f"{request.scheme}://{request.host}"
    return f"{base}/{path}.git"


@page("home.html")
async def home(request: web.Request) -> dict[str, Any]:
    session = signed_in(request)
    services = request.config_dict[UI]
    repos = await visible_repos(services.repos, session.identity)
    return {"repos": [(info, clone_url(request, str(info.repo.path))) for info in repos]}


async def _token_context(request: web.Request) -> dict[str, Any]:
    session = signed_in(request)
    services = request.config_dict[UI]
    tokens = await services.admin.list_tokens(actor(request, session), session.identity.name)
    return {"tokens": tokens, "max_days": services.settings.token_max_days}


@page("tokens.html")
async def tokens_page(request: web.Request) -> dict[str, Any]:
    return await _token_context(request)


async def create_token(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    label = text(data, "label", required=False, limit=200).strip() or None
    days_text = text(data, "expires", required=False, limit=6).strip()
    if days_text and not days_text.isdigit():
        raise BadRequest("expiry is a number of days")
    try:
        scope = Scope.parse(data.get("scope", "write"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    services = request.config_dict[UI]
    info, secret = await services.admin.create_token(
        actor(request, session),
        session.identity.name,
        label=label,
        days=int(days_text) if days_text else None,
        scope=scope,
    )
    context = {**await _token_context(request), "created": info, "secret": secret}
    return render(request, "tokens.html", context, status=201)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    token_id = text(data, "token_id", limit=12)
    if not token_id.isdigit():
        raise BadRequest("token_id is a number")
    await request.config_dict[UI].admin.revoke_token(actor(request, session), int(token_id))
    see_other(f"{PREFIX}/tokens")
