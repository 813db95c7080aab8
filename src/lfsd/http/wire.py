"""The Batch and Locking APIs' JSON, as the specification names it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Final, TypeVar

from lfsd.core.batch import ObjectResult, ObjectSpec
from lfsd.core.errors import BadRequest, Unprocessable
from lfsd.core.locks import Lock

T = TypeVar("T")

# Parsed by hand after ``json.loads`` rather than with pydantic models: pydantic and pydantic-core are 9 MiB of the
# idle server's resident size (issue 17), and these seven bodies are a few fields each. The rules are pydantic's,
# as the tests pin them: 400 for anything that is not UTF-8 JSON, 422 ``invalid <what>: <field path>: <message>``
# for the wrong shape (the first problem found), unknown fields ignored.

# A JSON escape of a UTF-16 surrogate: only then can ``json.loads`` produce a string that is not valid Unicode.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class WireRef:
    name: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    operation: str
    # Each object as sent: oid and size are validated per object by the core, so that one bad object gets a
    # per-object error, not a failed batch. Built here, in the one pass over the list that checks its shape.
    objects: list[ObjectSpec]
    transfers: list[str] | None = None
    ref: WireRef | None = None
    hash_algo: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyObjectRequest:
    oid: str
    size: int


@dataclass(frozen=True, slots=True)
class CreateLockRequest:
    path: object = None  # validated by the core's lock path rules
    ref: WireRef | None = None


@dataclass(frozen=True, slots=True)
class VerifyLocksRequest:
    cursor: object = None
    limit: object = None
    ref: WireRef | None = None


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    force: bool = False
    ref: WireRef | None = None


class _Shape(Exception):
    """The body is JSON of the wrong shape: where (a field path) and what is wrong."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(where, message)
        self.where = where
        self.message = message


def _load(body: bytes, *, empty_ok: bool = False) -> dict[str, object]:
    """The body as a JSON object: 400 if it is not UTF-8 JSON (as pydantic's parser: no BOM, no lone surrogates,
    no integers past Python's digit limit, no nesting past the recursion limit), 422 if it is not an object."""
    if empty_ok and not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
        if _SURROGATE_ESCAPE.search(body) is not None:
            _encodable(document)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError and UnicodeEncodeError are ValueErrors
        raise BadRequest("malformed JSON in request body") from None
    if not isinstance(document, dict):
        raise _Shape("body", "Input should be an object")
    return document


def _encodable(value: object) -> None:
    """Raise ``UnicodeEncodeError`` if any string in ``value`` holds a lone surrogate."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            _encodable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _encodable(key)
            _encodable(item)


def _required(document: dict[str, object], name: str) -> object:
    if name not in document:
        raise _Shape(name, "Field required")
    return document[name]


def _string(value: object, where: str) -> str:
    if type(value) is not str:
        raise _Shape(where, "Input should be a valid string")
    return value


def _optional_string(value: object, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _list(value: object, where: str) -> list[object]:
    if type(value) is not list:
        raise _Shape(where, "Input should be a valid array")
    return value


def _ref(document: dict[str, object]) -> WireRef | None:
    ref = document.get("ref")
    if ref is None:
        return None
    if type(ref) is not dict:
        raise _Shape("ref", "Input should be an object")
    return WireRef(_optional_string(ref.get("name"), "ref.name"))


def _batch(document: dict[str, object]) -> BatchRequest:
    operation = _string(_required(document, "operation"), "operation")
    items = _list(_required(document, "objects"), "objects")
    try:
        objects = [ObjectSpec(item.get("oid"), item.get("size")) for item in items]  # type: ignore[attr-defined]
    except AttributeError:  # not an object: find which, for the message
        index = next(index for index, item in enumerate(items) if type(item) is not dict)
        raise _Shape(f"objects.{index}", "Input should be an object") from None
    transfers = document.get("transfers")
    if transfers is not None:
        transfers = [_string(name, f"transfers.{index}") for index, name in enumerate(_list(transfers, "transfers"))]
    ref = _ref(document)
    return BatchRequest(operation, objects, transfers, ref, _optional_string(document.get("hash_algo"), "hash_algo"))


def _verify_object(document: dict[str, object]) -> VerifyObjectRequest:
    oid = _string(_required(document, "oid"), "oid")
    size = _required(document, "size")
    if type(size) is not int:  # a JSON integer: not a boolean, a fraction or a string of digits
        raise _Shape("size", "Input should be a valid integer")
    return VerifyObjectRequest(oid, size)


def _create_lock(document: dict[str, object]) -> CreateLockRequest:
    return CreateLockRequest(document.get("path"), _ref(document))


def _verify_locks(document: dict[str, object]) -> VerifyLocksRequest:
    return VerifyLocksRequest(document.get("cursor"), document.get("limit"), _ref(document))


def _unlock(document: dict[str, object]) -> UnlockRequest:
    force = document.get("force", False)
    if type(force) is not bool:
        raise _Shape("force", "Input should be a valid boolean")
    return UnlockRequest(force, _ref(document))


def _parse(build: Callable[[dict[str, object]], T], body: bytes, what: str, *, empty_ok: bool = False) -> T:
    try:
        return build(_load(body, empty_ok=empty_ok))
    except _Shape as exc:
        raise Unprocessable(f"invalid {what}: {exc.where}: {exc.message}") from None


def parse_batch(body: bytes) -> BatchRequest:
    return _parse(_batch, body, "batch request")


def parse_verify_object(body: bytes) -> VerifyObjectRequest:
    return _parse(_verify_object, body, "verify request")


def parse_create_lock(body: bytes) -> CreateLockRequest:
    return _parse(_create_lock, body, "lock request")


def parse_verify_locks(body: bytes) -> VerifyLocksRequest:
    return _parse(_verify_locks, body, "verify request", empty_ok=True)


def parse_unlock(body: bytes) -> UnlockRequest:
    return _parse(_unlock, body, "unlock request", empty_ok=True)


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
