"""What every UI response carries and every UI request is checked for: security headers, the session cookie, and
the CSRF token of each POST.

The session cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/ui`` and, over HTTPS (directly, behind a trusted
proxy that says so in ``X-Forwarded-Proto``, or with an https ``public_url``), ``Secure``. Each session has its own
CSRF secret; the sign-in form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from ipaddress import ip_address
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from lfsd.core.errors import Forbidden, LfsError
from lfsd.core.sessions import same_secret
from lfsd.ui.keys import SESSION, SESSION_ID, UI
from lfsd.ui.pages import PAGES

PREFIX: Final = "/ui"

log = logging.getLogger("lfsd.ui")

SESSION_COOKIE: Final = "lfsd_session"
LOGIN_COOKIE: Final = "lfsd_login"
COOKIE_PATH: Final = "/ui"
CSRF_FIELD: Final = "csrf"

HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_https(request: web.Request) -> bool:
    if request.scheme == "https":
        return True
    settings = request.config_dict[UI].settings
    if settings.public_url is not None and settings.public_url.startswith("https://"):
        return True
    peer = request.remote
    if peer is None or not settings.trusted_proxies:
        return False
    try:
        trusted = any(ip_address(peer) in network for network in settings.trusted_proxies)
    except ValueError:
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return trusted and forwarded == "https"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    set_cookie(request, response, name, "", 0)


def login_nonce(request: web.Request) -> str:
    """The sign-in form's CSRF value: the one its cookie holds, or a new one the response must set."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if 20 <= len(current) <= 100 and current.isascii() else secrets.token_urlsafe(24)


async def _check_csrf(request: web.Request) -> None:
    form = await request.post()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not given:
        raise Forbidden("this form has expired or was not sent by lfsd: reload the page and try again")
    session = request.get(SESSION)
    expected = session.csrf if session is not None else request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not same_secret(given, expected):
        raise Forbidden("this form has expired or was not sent by lfsd: reload the page and try again")


async def _resume(request: web.Request) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return
    session = await request.config_dict[UI].sessions.resume(session_id)
    if session is not None:
        request[SESSION] = session
        request[SESSION_ID] = session_id


@web.middleware
async def ui_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, CSRF, errors as pages, and the security headers, for every response under /ui/."""
    try:
        await _resume(request)
        if request.method == "POST":
            await _check_csrf(request)
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            _secure(exc)
            raise
        response = _error_page(request, exc.status, exc.reason, {})
    except LfsError as exc:
        response = _error_page(request, exc.status, exc.message, dict(exc.headers))
    except Exception:
        log.exception("unhandled error in the web UI")
        response = _error_page(request, 500, "internal server error", {})
    _secure(response)
    return response


def _page_context(request: web.Request) -> dict[str, object]:
    """What every template may use: who is signed in, their CSRF token, where we are."""
    session = request.get(SESSION)
    return {
        "user": session.identity if session is not None else None,
        "csrf": session.csrf if session is not None else "",
        "csrf_field": CSRF_FIELD,
        "prefix": PREFIX,
        "path": request.path,
    }


def render(request: web.Request, template: str, context: Mapping[str, object], *, status: int = 200) -> web.Response:
    """A page: ``context`` with what every page shows (who is signed in, their CSRF token, where we are)."""
    return request.config_dict[PAGES].render(template, {**_page_context(request), **context}, status=status)


PageHandler = Callable[[web.Request], Awaitable[Mapping[str, object]]]


def page(template: str) -> Callable[[PageHandler], Handler]:
    """A handler returning its template's context, rendered as ``template``."""

    def wrap(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def render_page(request: web.Request) -> web.StreamResponse:
            return render(request, template, await handler(request))

        return render_page

    return wrap


def _secure(response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")


def _error_page(request: web.Request, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
    response = render(request, "error.html", {"status": status, "message": message}, status=status)
    for name, value in headers.items():
        response.headers[name] = value
    return response
