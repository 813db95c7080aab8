"""Object-page cursors: what one page hands out, the next one reads; anything else is a clear 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lfsd.core.catalog import (
    InvalidObjectCursor,
    ObjectEntry,
    ObjectQuery,
    ObjectSort,
    Position,
    decode_cursor,
    encode_cursor,
    micros,
    object_page,
    position_of,
)

OID = "ab" * 32


def test_round_trip() -> None:
    for position in (Position(0, OID), Position(2**62, OID), Position(micros(datetime.now(UTC)), OID)):
        assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize("bad", ["", "x", "!!!", "a" * 300, "é", encode_cursor(Position(1, OID))[:-3]])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidObjectCursor) as caught:
        decode_cursor(bad)
    assert caught.value.status == 400


def test_negative_and_bad_oid_are_refused() -> None:
    import base64

    for raw in (f"-1.{OID}", "1.xyz", f"1.{OID.upper()}", f"{'9' * 20}.{OID}"):
        with pytest.raises(InvalidObjectCursor):
            decode_cursor(base64.urlsafe_b64encode(raw.encode()).decode())


def test_position_by_sort() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    entry = ObjectEntry(OID, 42, at)
    assert position_of(entry, ObjectSort.SIZE) == Position(42, OID)
    assert position_of(entry, ObjectSort.DATE).key == micros(at) == 1767323045678901


class ListCatalog:
    def __init__(self, entries: list[ObjectEntry]) -> None:
        self.entries = entries
        self.asked: list[ObjectQuery] = []

    async def page(self, repo_id: int, query: ObjectQuery) -> list[ObjectEntry]:
        self.asked.append(query)
        return self.entries[: query.limit]


async def test_a_page_asks_one_more_to_know_whether_another_follows() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [ObjectEntry(f"{i:064x}", i, at) for i in range(5)]
    catalog = ListCatalog(entries)
    page = await object_page(catalog, 1, ObjectQuery(ObjectSort.SIZE, limit=3))
    assert catalog.asked[0].limit == 4
    assert page.entries == entries[:3]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == Position(2, entries[2].oid)
    page = await object_page(catalog, 1, ObjectQuery(ObjectSort.SIZE, limit=5))
    assert page.next_cursor is None
