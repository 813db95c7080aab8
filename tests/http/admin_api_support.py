"""Helpers for the admin API tests: an admin-scope token, JSON calls, and checks against the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from openapi_schema_validator import OAS31Validator

from lfsd.core.admin import Administration
from lfsd.core.audit import Actor
from lfsd.core.tokens import Scope
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.http.admin_api.openapi import build_document

CLI = Actor.cli("operator")


def administration(meta: Metadata) -> Administration:
    return Administration(meta.users, meta.tokens, meta.repos, meta.locks, meta.audit, utcnow)


async def bearer(meta: Metadata, name: str, scope: Scope = Scope.ADMIN) -> dict[str, str]:
    _, secret = await administration(meta).create_token(CLI, name, label="api", scope=scope)
    return {"Authorization": f"Bearer {secret}"}


async def ok(response: ClientResponse, status: int = 200, schema: str | None = None) -> Any:
    """The JSON of a successful response (``status``), checked against ``schema`` of the document when named."""
    text = await response.text()
    assert response.status == status, f"{response.status} != {status}: {text}"
    assert response.headers.get("X-Request-Id")
    if status == 204:
        assert text == ""
        return None
    assert response.content_type == "application/json"
    document = await response.json()
    if schema is not None:
        conforms(document, schema)
    return document


def conforms(instance: object, schema: str) -> None:
    root = {"$ref": f"#/components/schemas/{schema}", "components": build_document()["components"]}
    OAS31Validator(root).validate(instance)
