"""The OpenAPI document: valid OpenAPI 3.1, and in agreement with the router, route by route."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel

from lfsd.app import build_app
from lfsd.config import Settings
from lfsd.http.admin_api import models
from lfsd.http.admin_api.openapi import build_document
from lfsd.http.admin_api.routes import OPENAPI, OPERATIONS
from tests.conftest import AiohttpClient


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if canonical.startswith("/api/v1") and route.method != "HEAD":
            routes.add((canonical, route.method.lower()))
    return routes


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_documented_and_every_documented_path_exists(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path / "data"))
    documented = {(path, method) for path, item in build_document()["paths"].items() for method in item}
    routed = _app_routes(app)
    assert routed, "no /api/v1 routes"
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations with no route"


async def test_the_document_is_served(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(build_app(Settings(data_dir=tmp_path / "data", database_url=None)))
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    assert document == build_document()
    # A sub-resource path and a nested repository path reach their own handlers, not each other's.
    assert "/api/v1/repos/{repo}/-/grants" in document["paths"]


def test_every_operation_names_a_handler_and_a_request_model_that_exist() -> None:
    """The route table names handlers and models as strings (imported on the first request): each must resolve."""
    for op in (*OPERATIONS, OPENAPI):
        module, _, function = op.handler.rpartition(".")
        assert inspect.iscoroutinefunction(getattr(importlib.import_module(f"lfsd.http.admin_api.{module}"), function))
        assert op.operation_id == function
        if op.request is not None:
            assert issubclass(getattr(models, op.request), BaseModel), op.request
