"""The OpenAPI 3.1 document of the admin API, built from the route table (``routes.OPERATIONS``) and the request
models, and served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel

from lfsd.core.usage import MAX_HISTORY_DAYS
from lfsd.http.admin_api import models
from lfsd.http.admin_api.edge import MAX_LIMIT, respond
from lfsd.http.admin_api.routes import BASE, OPENAPI, OPERATIONS, Operation

JSON: Final = "application/json"
ERROR_MEDIA: Final = "application/vnd.git-lfs+json"

_TIME = {"type": ["string", "null"], "format": "date-time"}
_STR_OR_NULL = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _list(name: str, item: str) -> dict[str, Any]:
    return _object(
        {name: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}, "next_cursor": {"type": "string"}},
        [name],
    )


SCHEMAS: Final[dict[str, Any]] = {
    "Error": _object({"message": {"type": "string"}, "request_id": {"type": "string"}}),
    "User": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "admin": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "password": {"type": "boolean", "description": "whether the user has a password"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_active_at": _TIME,
        }
    ),
    "Token": _object(
        {
            "id": {"type": "integer"},
            "user": {"type": "string"},
            "label": _STR_OR_NULL,
            "scopes": {"type": "array", "items": {"enum": ["read", "write", "admin"]}},
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": _TIME,
            "expires_at": _TIME,
        }
    ),
    "CreatedToken": _object(
        {
            "token": {"$ref": "#/components/schemas/Token"},
            "secret": {"type": "string", "description": "shown only in this response"},
        }
    ),
    "Revoked": _object({"revoked": {"type": "integer"}}),
    "Repo": _object(
        {
            "id": {"type": "integer"},
            "path": {"type": "string"},
            "public": {"type": "boolean"},
            "locking": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "objects": {"type": "integer"},
            "bytes": {"type": "integer"},
            "last_push": _TIME,
        }
    ),
    "Grant": _object(
        {"repo": {"type": "string"}, "user": {"type": "string"}, "permission": {"enum": ["read", "write", "admin"]}}
    ),
    "Lock": _object(
        {
            "id": {"type": "string"},
            "path": {"type": "string"},
            "locked_at": {"type": "string", "format": "date-time"},
            "owner": _object({"name": {"type": "string"}}),
        }
    ),
    "AuditEntry": _object(
        {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "address": {"type": "string"},
            "outcome": {"enum": ["ok", "denied", "failed"]},
            "details": {"type": "object"},
        }
    ),
    "Usage": _object(
        {
            "path": {"type": "string", "description": "for a repository"},
            "owner": {"type": "string", "description": "for an owner"},
            "objects": {"type": "integer"},
            "bytes": {"type": "integer"},
            "last_push": _TIME,
            "quota_bytes": {"type": ["integer", "null"]},
            "quota_source": {"enum": ["own", "default", None], "description": "set here, or the server default"},
            "history": {
                "type": "array",
                "description": "with ?days=N: one entry per day, oldest first, today last",
                "items": _object(
                    {
                        "day": {"type": "string", "format": "date"},
                        "objects": {"type": "integer"},
                        "bytes": {"type": "integer"},
                    }
                ),
            },
        },
        ["objects", "bytes", "last_push", "quota_bytes", "quota_source"],
    ),
    "SshKey": _object(
        {
            "id": {"type": "integer"},
            "user": {"type": "string"},
            "type": {"type": "string"},
            "fingerprint": {"type": "string", "description": "SHA256:…"},
            "label": _STR_OR_NULL,
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": _TIME,
        }
    ),
    "SshKeyList": _object({"ssh_keys": {"type": "array", "items": {"$ref": "#/components/schemas/SshKey"}}}),
    "UserList": _list("users", "User"),
    "TokenList": _list("tokens", "Token"),
    "RepoList": _list("repos", "Repo"),
    "GrantList": _list("grants", "Grant"),
    "LockList": _list("locks", "Lock"),
    "AuditList": _list("entries", "AuditEntry"),
}

_QUERY: Final[dict[str, dict[str, Any]]] = {
    "cursor": {"description": "the next_cursor of the previous page", "schema": {"type": "string"}},
    "limit": {
        "description": "page size (default 100)",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    },
    "actor": {"description": "only this actor", "schema": {"type": "string"}},
    "action": {"description": "only this action (token.revoke) or group (token)", "schema": {"type": "string"}},
    "since": {"description": "only from this time on (ISO 8601)", "schema": {"type": "string", "format": "date-time"}},
    "days": {
        "description": f"include this many days of history (1 to {MAX_HISTORY_DAYS})",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_DAYS},
    },
}
_PATH: Final = {
    "repo": "repository path, slashes included (acme/game)",
    "name": "user name (percent-encoded)",
    "id": "numeric id",
    "owner": "the OWNER of OWNER/NAME",
}
_ERRORS: Final = {
    "400": "malformed JSON",
    "401": "no or wrong credentials",
    "403": "not allowed (admin operations need a server admin's token with the admin scope)",
    "404": "no such user, token, repository, grant or lock",
    "409": "already exists",
    "413": "body too large",
    "415": "body not application/json",
    "422": "wrong type, unknown field or invalid value",
}
_ACCESS: Final = {
    "admin": "Needs a server admin's token with the `admin` scope; anyone else gets 403 before the body is read.",
    "self": "Any authenticated user, for their own account; server admins (admin scope) for anyone's.",
    "none": "No credentials needed.",
}


def _operation(op: Operation) -> dict[str, Any]:
    names = [part[1:-1] for part in op.template.split("/") if part.startswith("{")]
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": _PATH[name], "schema": {"type": "string"}}
        for name in names
    ]
    parameters += [{"name": name, "in": "query", **_QUERY[name]} for name in op.query]
    success: dict[str, Any] = {"description": "done"}
    if op.response is not None:
        success["content"] = {JSON: {"schema": {"$ref": f"#/components/schemas/{op.response}"}}}
    error = {"content": {ERROR_MEDIA: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": _ACCESS[op.access],
        "parameters": parameters,
        "responses": {
            str(op.status): success,
            **{code: {"description": text, **error} for code, text in _ERRORS.items()},
        },
    }
    if op.access == "none":
        document["security"] = []
    if op.request is not None:
        name = op.request
        document["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    return document


def build_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas = dict(SCHEMAS)
    for op in (*OPERATIONS, OPENAPI):
        paths.setdefault(BASE + op.template, {})[op.method.lower()] = _operation(op)
        if op.request is not None:
            model: type[BaseModel] = getattr(models, op.request)
            schemas[op.request] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lfsd admin API",
            "version": "1",
            "description": "Users, tokens, repositories, grants, locks and the audit log. Errors are LFS JSON "
            "bodies with a request_id; lists are paged by cursor.",
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "user name and token (or password)"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "a personal access token"},
            },
        },
    }


async def openapi_document(request: web.Request) -> web.Response:
    return respond(build_document())
