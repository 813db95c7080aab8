"""Signing in and out of the web UI: cookies, server-side sessions, the throttle, CSRF and security headers."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

from multidict import CIMultiDictProxy
from sqlalchemy import select, update

from lfsd.config import Settings
from lfsd.db.tables import ui_sessions
from tests.conftest import AiohttpClient, open_world
from tests.support import World
from tests.ui.browser import Browsers, csrf_of

PASSWORD = "correct horse battery"


def _cookie(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";")]
    name, _, value = parts[0].partition("=")
    attributes = {key.lower(): val for key, _, val in (part.partition("=") for part in parts[1:])}
    return {"name": name, "value": value, **attributes}


async def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session(world: World, browsers: Browsers) -> None:
    await world.user("alice", password=PASSWORD)
    await world.repo("acme/game", grants={"alice": "write"})
    browser = browsers.new()
    await browser.get("/ui/login")
    response = await browser.post("/ui/login", {"name": "alice", "password": PASSWORD, "next": "/ui/"})
    assert response.status == 303
    assert response.headers["Location"] == "/ui/"
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith("lfsd_session=")]
    cookie = _cookie(header)
    assert cookie["path"] == "/ui"
    assert cookie["samesite"] == "Strict"
    assert "httponly" in cookie
    assert "secure" not in cookie  # plain HTTP, no trusted proxy
    session_id = cookie["value"]

    # Only a SHA-256 of the id is stored.
    async with world.meta.db.transaction() as conn:
        stored = (await conn.execute(select(ui_sessions.c.digest))).scalars().all()
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]

    page = await browser.get("/ui/")
    assert "acme/game" in page
    assert "git clone http://" in page and "/acme/game.git" in page
    assert re.search(r'value="git config lfs.url http://127\.0\.0\.1:\d+/acme/game\.git/info/lfs"', page)

    response = await browser.post("/ui/logout", {})
    assert response.status == 303
    async with world.meta.db.transaction() as conn:
        assert (await conn.execute(select(ui_sessions.c.digest))).first() is None
    # The old cookie, replayed by hand, no longer opens anything.
    replay = browsers.new(headers={"Cookie": f"lfsd_session={session_id}"})
    response = await replay.client.get("/ui/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/ui/login")


async def test_pages_need_a_session(world: World, browsers: Browsers) -> None:
    browser = browsers.new()
    for path in ("/ui/", "/ui/tokens", "/ui/admin", "/ui/repo/acme/game"):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/ui/login?next=")


async def test_wrong_password_and_the_throttle(world: World, browsers: Browsers) -> None:
    await world.user("alice", password=PASSWORD)
    browser = browsers.new()
    await browser.get("/ui/login")
    response = await browser.post("/ui/login", {"name": "alice", "password": "wrong"})
    assert response.status == 401
    assert "Wrong user name or password" in await response.text()
    response = await browser.post("/ui/login", {"name": "al:ice", "password": "wrong"})
    assert response.status == 401
    for _ in range(9):  # login_failures_per_user_address: 10 (the invalid name above asked nothing, counted nothing)
        response = await browser.post("/ui/login", {"name": "alice", "password": "wrong"})
        assert response.status == 401
    response = await browser.post("/ui/login", {"name": "alice", "password": PASSWORD})
    assert response.status == 429  # the API's throttle: even the right password waits
    assert int(response.headers["Retry-After"]) > 0
    assert "too many failed logins" in await response.text()


async def test_a_disabled_user_is_signed_out_at_once(world: World, browsers: Browsers) -> None:
    browser = await browsers.signed_in("alice", PASSWORD)
    await browser.get("/ui/")
    await world.meta.users.set_disabled("alice", True)
    response = await browser.client.get("/ui/", allow_redirects=False)
    assert response.status == 303
    await world.meta.users.set_disabled("alice", False)
    await browser.get("/ui/")  # the session itself was not lost; a deleted user's would be
    user = await world.meta.users.require("alice")
    await world.meta.users.delete(user.id)
    response = await browser.client.get("/ui/", allow_redirects=False)
    assert response.status == 303


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(world: World, browsers: Browsers) -> None:
    browser = await browsers.signed_in("alice", PASSWORD)
    await browser.get("/ui/tokens")
    response = await browser.client.post("/ui/tokens", data={"label": "x"}, allow_redirects=False)
    assert response.status == 403
    assert "form has expired" in await response.text()
    response = await browser.post("/ui/tokens", {"label": "x"}, csrf="not-the-token")
    assert response.status == 403
    response = await browser.post("/ui/logout", {}, csrf="")
    assert response.status == 403
    # Another session's token is wrong too.
    other = await browsers.signed_in("bob", PASSWORD)
    response = await browser.post("/ui/tokens", {"label": "x"}, csrf=other.csrf)
    assert response.status == 403
    alice = await world.meta.users.require("alice")
    assert len(await world.meta.tokens.tokens_of(alice.id)) == 1  # the one World made: none of the above
    response = await browser.post("/ui/tokens", {"label": "x"})
    assert response.status == 201
    assert len(await world.meta.tokens.tokens_of(alice.id)) == 2
    # Signing in needs the sign-in form's own token too.
    fresh = browsers.new()
    response = await fresh.client.post("/ui/login", data={"name": "alice", "password": PASSWORD})
    assert response.status == 403


async def test_secure_cookie_only_over_https(settings: Settings, aiohttp_client: AiohttpClient) -> None:
    trusted = settings.replace(trusted_proxies=(ip_network("127.0.0.1/32"),))
    world = await open_world(trusted, aiohttp_client)
    browsers = Browsers(world)
    try:
        await world.user("alice", password=PASSWORD)
        for proto, secure in (("https", True), ("http", False)):
            browser = browsers.new(headers={"X-Forwarded-Proto": proto})
            form = await browser.client.get("/ui/login")
            (login,) = [_cookie(h) for h in form.headers.getall("Set-Cookie") if h.startswith("lfsd_login=")]
            assert ("secure" in login) is secure
            # The client speaks plain HTTP to the "proxy": a Secure cookie is handed over by hand.
            fields = {"csrf": csrf_of(await form.text()), "name": "alice", "password": PASSWORD}
            response = await browser.client.post(
                "/ui/login", data=fields, headers={"Cookie": f"lfsd_login={login['value']}"}, allow_redirects=False
            )
            assert response.status == 303
            (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith("lfsd_session=")]
            assert ("secure" in _cookie(header)) is secure
    finally:
        await browsers.close()
        await world.meta.close()


async def test_forwarded_proto_from_an_untrusted_peer_is_ignored(world: World, browsers: Browsers) -> None:
    await world.user("alice", password=PASSWORD)
    browser = browsers.new(headers={"X-Forwarded-Proto": "https"})
    await browser.get("/ui/login")
    response = await browser.post("/ui/login", {"name": "alice", "password": PASSWORD})
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith("lfsd_session=")]
    assert "secure" not in _cookie(header)


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def _check_headers(headers: CIMultiDictProxy[str], path: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (path, name)
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "script-src 'self'"):
        assert directive in csp, (path, directive)
    assert "unsafe-inline" not in csp


async def test_every_ui_response_has_the_security_headers(world: World, browsers: Browsers) -> None:
    anonymous = browsers.new()
    for path in ("/ui/login", "/ui/", "/ui/static/nope.css", "/ui/repo/a/b"):
        response = await anonymous.client.get(path, allow_redirects=False)
        _check_headers(response.headers, path)
    browser = await browsers.signed_in("alice", PASSWORD)
    page = await browser.get("/ui/")
    response = await browser.client.get("/ui/", allow_redirects=False)
    _check_headers(response.headers, "/ui/")
    assert response.headers["Cache-Control"] == "no-store"
    response = await browser.client.get("/ui/repo/no/such", allow_redirects=False)
    assert response.status == 404
    _check_headers(response.headers, "404")
    assert "<script>" not in page.replace('<script src="', "")  # no inline script anywhere
    assert "style=" not in page
    # Static files: a content hash in the name, cached for a year.
    (css,) = re.findall(r'href="(/ui/static/ui\.[0-9a-f]{16}\.css)"', page)
    response = await browser.client.get(css)
    assert response.status == 200
    assert response.content_type == "text/css"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    _check_headers(response.headers, css)
    # The API keeps its own answers: no UI headers there.
    response = await browser.client.get("/acme/game.git/info/lfs/locks")
    assert "Content-Security-Policy" not in response.headers


async def test_an_expired_session_is_refused_and_purged(world: World, browsers: Browsers) -> None:
    browser = await browsers.signed_in("alice", PASSWORD)
    await browser.get("/ui/")
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with world.meta.db.transaction() as conn:
        await conn.execute(update(ui_sessions).values(expires_at=past))
    response = await browser.client.get("/ui/", allow_redirects=False)
    assert response.status == 303
    await browsers.signed_in("bob", PASSWORD)  # a new sign-in clears the expired rows
    async with world.meta.db.transaction() as conn:
        rows = (await conn.execute(select(ui_sessions.c.expires_at))).scalars().all()
    assert len(rows) == 1 and rows[0] > datetime.now(UTC)
