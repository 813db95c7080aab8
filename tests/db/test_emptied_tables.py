"""Every table of the schema is emptied between tests on the server databases, so no test sees another's rows."""

from __future__ import annotations

from lfsd.db.tables import metadata
from tests.databases import TABLES


def test_every_table_is_truncated_between_tests() -> None:
    assert set(TABLES) == set(metadata.tables)
