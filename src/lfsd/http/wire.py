"""The Batch API's JSON, as the specification names it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from lfsd.core.batch import ObjectResult
from lfsd.core.errors import BadRequest, Unprocessable


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


def parse_batch(body: bytes) -> BatchRequest:
    try:
        return BatchRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise BadRequest("malformed JSON in request body") from None
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Unprocessable(f"invalid batch request: {where}: {first['msg']}") from None


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
