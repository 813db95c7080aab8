"""Batch planning: decide, per requested object, which action or error the Batch API answers with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from lfsd.core.errors import InvalidOid, InvalidSize
from lfsd.core.oid import Oid

MAX_SIZE: Final = 2**63 - 1
SIZE_CONFLICT: Final = "size does not match the stored object with this oid"


class Operation(StrEnum):
    DOWNLOAD = "download"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class Action:
    href: str
    header: dict[str, str]
    expires_in: int


@dataclass(frozen=True, slots=True)
class ObjectError:
    code: int
    message: str


@dataclass(slots=True)
class ObjectResult:
    oid: str
    size: int
    actions: dict[str, Action] | None = None
    error: ObjectError | None = None
    authenticated: bool | None = None


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """A requested object as sent, before validation."""

    oid: object
    size: object


@dataclass(frozen=True, slots=True)
class ValidObject:
    oid: Oid
    size: int


def parse_size(value: object) -> int:
    # bool is an int subclass; JSON true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise InvalidSize()
    return value


@dataclass
class ParsedObjects:
    valid: list[ValidObject] = field(default_factory=list)
    results: list[ObjectResult | ValidObject] = field(default_factory=list)


def parse_objects(specs: Sequence[ObjectSpec]) -> ParsedObjects:
    """Validate each object; invalid ones become per-object 422 errors in request order."""
    parsed = ParsedObjects()
    for spec in specs:
        oid_text = spec.oid if isinstance(spec.oid, str) else ""
        size_value = spec.size if isinstance(spec.size, int) and not isinstance(spec.size, bool) else 0
        try:
            item = ValidObject(Oid.parse(spec.oid), parse_size(spec.size))
        except (InvalidOid, InvalidSize) as exc:
            parsed.results.append(
                ObjectResult(oid=oid_text, size=max(0, size_value), error=ObjectError(422, exc.message))
            )
            continue
        parsed.valid.append(item)
        parsed.results.append(item)
    return parsed


ActionFactory = Callable[[ValidObject], dict[str, Action]]


def plan_download(parsed: ParsedObjects, held: Mapping[Oid, int], actions: ActionFactory) -> list[ObjectResult]:
    """A download gets an action for each object the repository holds and a 404 error for the rest."""
    out: list[ObjectResult] = []
    for item in parsed.results:
        if isinstance(item, ObjectResult):
            out.append(item)
        elif item.oid in held:
            stored = ValidObject(item.oid, held[item.oid])
            out.append(ObjectResult(item.oid, stored.size, actions=actions(stored), authenticated=True))
        else:
            out.append(ObjectResult(item.oid, item.size, error=ObjectError(404, "object does not exist")))
    return out


def plan_upload(
    parsed: ParsedObjects,
    held: Mapping[Oid, int],
    linkable: Mapping[Oid, int],
    actions: ActionFactory,
) -> tuple[list[ObjectResult], dict[Oid, int]]:
    """An upload gets no actions for objects the repository holds (or may link); otherwise an upload action.

    ``linkable`` holds objects stored for other repositories that the caller can read: they are linked without a
    transfer, and returned so that the caller records the link. Objects only held by repositories the caller
    cannot read must be uploaded (and verified) again: skipping them would prove they exist.
    """
    out: list[ObjectResult] = []
    to_link: dict[Oid, int] = {}
    for item in parsed.results:
        if isinstance(item, ObjectResult):
            out.append(item)
        elif (known := held.get(item.oid, linkable.get(item.oid))) is not None and known != item.size:
            out.append(ObjectResult(item.oid, item.size, error=ObjectError(422, SIZE_CONFLICT)))
        elif item.oid in held:
            out.append(ObjectResult(item.oid, item.size))
        elif item.oid in linkable:
            to_link[item.oid] = item.size
            out.append(ObjectResult(item.oid, item.size))
        else:
            out.append(ObjectResult(item.oid, item.size, actions=actions(item), authenticated=True))
    return out, to_link
