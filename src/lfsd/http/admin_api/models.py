"""The admin API's request bodies: strict types, unknown fields refused (a typo must not pass as a no-op).

The one place of the server that uses pydantic: its handler modules import this one, and they are imported on the
admin API's first request (``routes.handler``), so that an idle server has not loaded pydantic (issue 17).
"""

from __future__ import annotations

from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from lfsd.core.errors import BadRequest, Unprocessable, UnsupportedMediaType
from lfsd.core.tokens import MAX_TOKEN_LABEL_LENGTH
from lfsd.http.admin_api.edge import JSON_TYPES, MAX_BODY
from lfsd.http.body import read_body

MAX_PASSWORD_LENGTH = 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _described(text: str) -> ConfigDict:
    """A model's description in its JSON schema (the admin API's OpenAPI document), set explicitly: a docstring
    would be gone where the server runs under ``python -OO``, as the container image does."""
    return ConfigDict(json_schema_extra={"description": text})


class NewUser(Strict):
    name: StrictStr = Field(description="1-100 printable characters without ':'")
    admin: StrictBool = False
    password: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserChange(Strict):
    model_config = _described("Each field present is changed; ``password: null`` removes the password (tokens only).")

    disabled: StrictBool | None = None
    admin: StrictBool | None = None
    password: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(Strict):
    current_password: StrictStr = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: StrictStr = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class NewToken(Strict):
    label: StrictStr | None = Field(default=None, max_length=MAX_TOKEN_LABEL_LENGTH)
    expires_days: StrictInt | None = Field(default=None, ge=1, le=100_000)
    scope: Literal["read", "write", "admin"] = "write"


class NewRepo(Strict):
    path: StrictStr = Field(description="owner/name, or group/sub/name")
    public: StrictBool = False


class RepoChange(Strict):
    model_config = _described("Each field present is changed; ``path`` renames (objects, locks and grants follow).")

    path: StrictStr | None = None
    public: StrictBool | None = None
    locking: StrictBool | None = None


class GrantChange(Strict):
    permission: Literal["read", "write", "admin"]


class QuotaChange(Strict):
    model_config = _described(
        "A byte quota; ``DELETE`` on the same path clears it (unlimited, or the server-wide default for a repository)."
    )

    quota_bytes: StrictInt = Field(ge=1, lt=2**63)


class NewSshKey(Strict):
    key: StrictStr = Field(description="one line of a .pub file: TYPE BASE64 [COMMENT]", max_length=16384)
    label: StrictStr | None = Field(default=None, max_length=100, description="defaults to the key's comment")


M = TypeVar("M", bound=BaseModel)


async def body(request: web.Request, model: type[M], what: str) -> M:
    """The JSON body as ``model``: 415 for another media type, 413 past the cap, 408 when it stalls, 400 for
    malformed JSON, 422 for wrong types or unknown fields."""
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType("Content-Type must be application/json")
    return parse_json(model, await read_body(request, MAX_BODY), what)


def parse_json(model: type[M], body: bytes, what: str) -> M:
    """Parse ``body`` into ``model``: 400 for malformed JSON, 422 for the wrong shape (the first problem)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise BadRequest("malformed JSON in request body") from None
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Unprocessable(f"invalid {what}: {where}: {first['msg']}") from None
