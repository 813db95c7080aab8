"""Small helpers the page handlers share: who is signed in, form fields, redirects."""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import quote

from aiohttp import web

from lfsd.core.audit import Actor
from lfsd.core.errors import BadRequest
from lfsd.core.sessions import Session
from lfsd.ui.keys import SESSION, UI
from lfsd.ui.security import PREFIX


def signed_in(request: web.Request) -> Session:
    """The session, or a redirect to the sign-in page that comes back here."""
    session: Session | None = request.get(SESSION)
    if session is None:
        back = request.rel_url.path_qs if request.method == "GET" else f"{PREFIX}/"
        raise web.HTTPSeeOther(f"{PREFIX}/login?next={quote(back, safe='')}")
    return session


def actor(request: web.Request, session: Session) -> Actor:
    return Actor.of(session.identity, request.config_dict[UI].address(request))


Form = dict[str, str]


async def form(request: web.Request) -> Form:
    """The text fields of the posted form (the first of each name; files are ignored)."""
    data = await request.post()
    fields: Form = {}
    for key, value in data.items():
        if isinstance(value, str):
            fields.setdefault(key, value)
    return fields


def text(data: Form, name: str, *, required: bool = True, limit: int = 1000) -> str:
    value = data.get(name, "")
    if len(value) > limit:
        raise BadRequest(f"{name} is too long")
    if required and not value.strip():
        raise BadRequest(f"{name} is required")
    return value


def see_other(location: str) -> NoReturn:
    raise web.HTTPSeeOther(location)


def safe_next(value: str | None) -> str:
    """Only a path inside the UI: never another site (an open redirect)."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"
