"""The Batch and Locking APIs' JSON, as the specification names it."""

from __future__ import annotations

from datetime import UTC
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError

from lfsd.core.batch import ObjectResult
from lfsd.core.errors import BadRequest, Unprocessable
from lfsd.core.locks import Lock

M = TypeVar("M", bound=BaseModel)


class WireObject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Validated per object by the core, so that one bad object gets a per-object error, not a failed batch.
    oid: object = None
    size: object = None


class WireRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    operation: str
    objects: list[WireObject]
    transfers: list[str] | None = None
    ref: WireRef | None = None
    hash_algo: str | None = None


class VerifyObjectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    oid: str
    size: int


class CreateLockRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: object = None  # validated by the core's lock path rules
    ref: WireRef | None = None


class VerifyLocksRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cursor: object = None
    limit: object = None
    ref: WireRef | None = None


class UnlockRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    force: StrictBool = False
    ref: WireRef | None = None


def parse_json(model: type[M], body: bytes, what: str, *, empty_ok: bool = False) -> M:
    """Parse ``body`` into ``model``: 400 for malformed JSON, 422 for the wrong shape."""
    if empty_ok and not body.strip():
        body = b"{}"
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise BadRequest("malformed JSON in request body") from None
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Unprocessable(f"invalid {what}: {where}: {first['msg']}") from None


def parse_batch(body: bytes) -> BatchRequest:
    return parse_json(BatchRequest, body, "batch request")


def render_lock(lock: Lock) -> dict[str, object]:
    return {
        "id": str(lock.id),
        "path": lock.path,
        "locked_at": lock.locked_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "owner": {"name": lock.owner_name},
    }


def render_object(result: ObjectResult) -> dict[str, object]:
    body: dict[str, object] = {"oid": result.oid, "size": result.size}
    if result.authenticated is not None:
        body["authenticated"] = result.authenticated
    if result.actions is not None:
        body["actions"] = {
            name: {"href": action.href, "header": action.header, "expires_in": action.expires_in}
            for name, action in result.actions.items()
        }
    if result.error is not None:
        body["error"] = {"code": result.error.code, "message": result.error.message}
    return body
