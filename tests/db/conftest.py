from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import BACKENDS, server_for


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema at all) on each backend."""
    yield from fresh_database(request.param, tmp_path)


@pytest.fixture(params=[backend for backend in BACKENDS if backend != "sqlite"])
def fresh_server_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each database server (SQLite migrates itself and is left out)."""
    yield from fresh_database(request.param, tmp_path)


def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on ``backend``: a file under ``tmp_path``, or a new database on the server (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server = server_for(backend)
    name = server.create()
    try:
        yield server.url(name)
    finally:
        server.drop(name)
