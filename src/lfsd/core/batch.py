"""Batch decisions: per requested object, what the Batch API answers. Decided once, before any link is made.

``decide_download`` and ``decide_upload`` are pure: they see what the repository holds (and, for uploads, what the
caller may link from repositories it can read) and return one decision per requested object, in request order.
The service then turns decisions into actions in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from lfsd.core.errors import InvalidOid, InvalidSize
from lfsd.core.oid import Oid

MAX_SIZE: Final = 2**63 - 1
SIZE_CONFLICT: Final = "size does not match the stored object with this oid"
NOT_FOUND: Final = "object does not exist"


@dataclass(frozen=True, slots=True)
class Action:
    href: str
    header: dict[str, str]
    expires_in: int


@dataclass(frozen=True, slots=True)
class ObjectError:
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """A requested object as sent, before validation."""

    oid: object
    size: object


@dataclass(frozen=True, slots=True)
class ValidObject:
    oid: Oid
    size: int


@dataclass(frozen=True, slots=True)
class InvalidObject:
    """A requested object that is not one: answered with a per-object 422 and otherwise ignored."""

    oid: str  # as sent, or "" when it was not a string
    size: int
    error: ObjectError


class Outcome(Enum):
    TRANSFER = "transfer"  # the bytes must move: an upload or download action
    PRESENT = "present"  # the repository holds it: nothing to do
    LINKED = "linked"  # held by a repository the caller can read: linked without a transfer
    REFUSED = "refused"  # a per-object error


@dataclass(frozen=True, slots=True)
class Decision:
    oid: Oid
    size: int
    outcome: Outcome
    error: ObjectError | None = None


Parsed = ValidObject | InvalidObject
Planned = Decision | InvalidObject


def parse_size(value: object) -> int:
    # bool is an int subclass; JSON true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise InvalidSize()
    return value


def parse_objects(specs: Sequence[ObjectSpec]) -> list[Parsed]:
    """Validate each object, in request order; invalid ones carry their 422."""
    parsed: list[Parsed] = []
    for spec in specs:
        try:
            parsed.append(ValidObject(Oid.parse(spec.oid), parse_size(spec.size)))
        except (InvalidOid, InvalidSize) as exc:
            oid_text = spec.oid if isinstance(spec.oid, str) else ""
            size = spec.size if isinstance(spec.size, int) and not isinstance(spec.size, bool) else 0
            parsed.append(InvalidObject(oid_text, max(0, size), ObjectError(422, exc.message)))
    return parsed


def requested(parsed: Sequence[Parsed]) -> set[Oid]:
    return {item.oid for item in parsed if isinstance(item, ValidObject)}


def decide_download(parsed: Sequence[Parsed], held: Mapping[Oid, int]) -> list[Planned]:
    """A transfer for each object the repository holds (at its stored size); 404 for the rest."""
    out: list[Planned] = []
    for item in parsed:
        if isinstance(item, InvalidObject):
            out.append(item)
        elif item.oid in held:
            out.append(Decision(item.oid, held[item.oid], Outcome.TRANSFER))
        else:
            out.append(Decision(item.oid, item.size, Outcome.REFUSED, ObjectError(404, NOT_FOUND)))
    return out


def decide_upload(parsed: Sequence[Parsed], held: Mapping[Oid, int], linkable: Mapping[Oid, int]) -> list[Planned]:
    """Nothing to do for objects the repository holds; a link for those the caller may link; else a transfer.

    ``linkable`` holds objects stored for other repositories that the caller can read. Objects only held by
    repositories the caller cannot read must be uploaded (and verified) again: skipping them would prove they exist.
    """
    out: list[Planned] = []
    for item in parsed:
        if isinstance(item, InvalidObject):
            out.append(item)
        elif (known := held.get(item.oid, linkable.get(item.oid))) is not None and known != item.size:
            out.append(Decision(item.oid, item.size, Outcome.REFUSED, ObjectError(422, SIZE_CONFLICT)))
        elif item.oid in held:
            out.append(Decision(item.oid, item.size, Outcome.PRESENT))
        elif item.oid in linkable:
            out.append(Decision(item.oid, item.size, Outcome.LINKED))
        else:
            out.append(Decision(item.oid, item.size, Outcome.TRANSFER))
    return out


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """One object of the batch response."""

    oid: str
    size: int
    actions: dict[str, Action] | None = None
    error: ObjectError | None = None

    @property
    def authenticated(self) -> bool | None:
        """True only for actions that carry no ``Authorization`` header of their own (presigned S3 URLs), so that
        git-lfs does not look for credentials for them; None (omitted) when every action carries one.

        git-lfs never asks for credentials for a request that has an ``Authorization`` header, so for lfsd's own
        links the flag changes one thing only: git-lfs sends an ``authenticated`` action through its HTTP client for
        "no credentials", keyed by host and access mode apart from the one that carried the batch, so every transfer
        of a signed-in user opened a second TCP connection. Without the flag the transfer goes through the batch's
        client and reuses its idle keep-alive connection, as it does with a server that needs no credentials: a 1 GiB
        git lfs fetch costs the client 1-2 % less CPU (docs/performance.md, "Big fetch: the second connection").
        """
        if self.actions is None:
            return None
        if all("Authorization" in action.header for action in self.actions.values()):
            return None
        return True
