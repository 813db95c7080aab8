"""Imports point one way: the core knows nothing of HTTP, SQL or storage; adapters do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lfsd"

FORBIDDEN = {
    "core": ("aiohttp", "sqlalchemy", "alembic", "lfsd.http", "lfsd.db", "lfsd.storage", "lfsd.app", "lfsd.cli"),
    "storage": ("aiohttp", "sqlalchemy", "lfsd.http", "lfsd.db", "lfsd.app"),
    "db": ("aiohttp", "lfsd.http", "lfsd.storage", "lfsd.app"),
    "http": ("sqlalchemy", "lfsd.db", "lfsd.storage", "lfsd.app"),
    "state": ("aiohttp", "sqlalchemy", "lfsd.http", "lfsd.db", "lfsd.storage", "lfsd.app"),
    "observability": ("aiohttp", "sqlalchemy", "lfsd.http", "lfsd.storage", "lfsd.app"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports(package: str) -> None:
    for path in (SRC / package).rglob("*.py"):
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not (name == banned or name.startswith(banned + ".")), f"{path} imports {name}"
