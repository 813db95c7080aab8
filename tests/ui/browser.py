"""A browser without a browser: an in-process client that signs in and submits forms as a person's browser does."""

from __future__ import annotations

import html
import re
from typing import Any

from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from tests.support import World

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "no CSRF field on the page"
    return html.unescape(found.group(1))


class Browser:
    """One person's browser: a cookie jar of its own (close it, or use ``World``'s fixture that does)."""

    def __init__(self, client: TestClient[Any, Any], headers: dict[str, str] | None = None) -> None:
        origin = str(client.make_url("/")).rstrip("/")
        self.client = ClientSession(base_url=origin, cookie_jar=CookieJar(unsafe=True), headers=headers)
        self.csrf = ""

    async def close(self) -> None:
        await self.client.close()

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        page = await response.text()
        assert response.status == status, f"{response.status} != {status}: {page[:2000]}"
        if 'name="csrf"' in page:
            self.csrf = csrf_of(page)
        return page

    async def post(self, path: str, fields: dict[str, str], *, csrf: str | None = None) -> ClientResponse:
        data = {"csrf": self.csrf if csrf is None else csrf, **fields}
        return await self.client.post(path, data=data, allow_redirects=False)

    async def sign_in(self, name: str, password: str) -> ClientResponse:
        await self.get("/ui/login")
        response = await self.post("/ui/login", {"name": name, "password": password})
        if response.status == 303:
            await self.get(response.headers["Location"])
        return response


class Browsers:
    """Browsers on one in-process server, closed together at the end of the test."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._open: list[Browser] = []

    def new(self, headers: dict[str, str] | None = None) -> Browser:
        browser = Browser(self.world.client, headers)
        self._open.append(browser)
        return browser

    async def signed_in(self, name: str, password: str, *, admin: bool = False) -> Browser:
        """A new user ``name`` with ``password``, signed in, in a browser of their own (its own cookie jar)."""
        await self.world.user(name, admin=admin, password=password)
        browser = self.new()
        response = await browser.sign_in(name, password)
        assert response.status == 303, await response.text()
        return browser

    async def close(self) -> None:
        for browser in self._open:
            await browser.close()
