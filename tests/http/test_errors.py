"""Every error renders the same way: LFS JSON, message, request_id, the status from the class."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from aiohttp import web

from lfsd.core import errors
from lfsd.http.errors import error_middleware
from lfsd.http.media import LFS_JSON

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.LfsError) and cls is not errors.LfsError
]


def _app(exc: BaseException) -> web.Application:
    async def boom(_request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/boom", boom)
    return app


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
async def test_each_error_class_renders_as_lfs_json(cls: type[errors.LfsError], aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app(cls()))
    response = await client.get("/boom", headers={"X-Request-Id": "req-12345678"})
    assert response.status == cls.status
    assert response.content_type == LFS_JSON
    body = await response.json(content_type=LFS_JSON)
    assert body == {"message": cls.default_message, "request_id": "req-12345678"}
    assert response.headers["X-Request-Id"] == "req-12345678"
    if cls.status == 401:
        assert response.headers["LFS-Authenticate"] == response.headers["WWW-Authenticate"] == 'Basic realm="Git LFS"'
    if cls.status == 503:
        assert response.headers["Retry-After"].isdigit()


async def test_unexpected_error_is_generic_500_and_logged(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(_app(RuntimeError("secret driver detail")))
    response = await client.get("/boom")
    assert response.status == 500
    text = await response.text()
    assert "secret driver detail" not in text and "Traceback" not in text
    body = await response.json(content_type=LFS_JSON)
    assert body["message"] == "internal server error" and len(body["request_id"]) == 32
    assert "secret driver detail" in caplog.text


async def test_unknown_route_is_lfs_json_404(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app(RuntimeError()))
    response = await client.get("/nothing/here")
    assert response.status == 404 and response.content_type == LFS_JSON


async def test_forged_request_id_is_replaced(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app(errors.NotFound()))
    response = await client.get("/boom", headers={"X-Request-Id": "bad id\twith spaces"})
    body = await response.json(content_type=LFS_JSON)
    assert body["request_id"] != "bad id\twith spaces" and len(body["request_id"]) == 32
