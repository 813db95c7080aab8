"""What a repository holds, page by page: the objects list of the web UI.

Pages follow a cursor (the last row's sort key and oid), never an offset, so the thousandth page of a repository of
100,000 objects costs what the first does: one index range scan.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from lfsd.core.errors import BadRequest, InvalidOid
from lfsd.core.oid import Oid

MAX_PAGE = 200


class ObjectSort(StrEnum):
    DATE = "date"  # first uploaded to this repository
    SIZE = "size"


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    oid: str
    size: int
    created_at: datetime
    uploader: str | None = None  # the name of who first linked it here; None: unknown, anonymous or deleted


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last entry's sort key and oid. ``key`` is a size, or a time in microseconds."""

    key: int
    oid: str


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    sort: ObjectSort = ObjectSort.DATE
    descending: bool = True
    after: Position | None = None
    limit: int = 50


class ObjectCatalog(Protocol):
    async def page(self, repo_id: int, query: ObjectQuery) -> list[ObjectEntry]:
        """Up to ``query.limit`` entries after ``query.after`` in the query's order (ties broken by oid)."""


def position_of(entry: ObjectEntry, sort: ObjectSort) -> Position:
    if sort is ObjectSort.SIZE:
        return Position(entry.size, entry.oid)
    return Position(micros(entry.created_at), entry.oid)


def micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(position: Position) -> str:
    raw = f"{position.key}.{position.oid}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class InvalidObjectCursor(BadRequest):
    default_message = "invalid cursor: use the links of this page"


def decode_cursor(value: str) -> Position:
    if len(value) > 200 or not value.isascii():
        raise InvalidObjectCursor()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        key, _, oid = raw.partition(".")
        if not key.isdigit() or len(key) > 19:
            raise InvalidObjectCursor()
        return Position(int(key), str(Oid.parse(oid)))
    except (binascii.Error, UnicodeDecodeError, InvalidOid, ValueError):
        raise InvalidObjectCursor() from None


@dataclass(frozen=True, slots=True)
class ObjectPage:
    entries: list[ObjectEntry]
    next_cursor: str | None


async def object_page(catalog: ObjectCatalog, repo_id: int, query: ObjectQuery) -> ObjectPage:
    """One page, and the cursor of the next when there is one (asked for one row more than shown)."""
    limit = max(1, min(query.limit, MAX_PAGE))
    rows = await catalog.page(repo_id, ObjectQuery(query.sort, query.descending, query.after, limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(position_of(rows[-1], query.sort)) if more else None
    return ObjectPage(rows, cursor)
