"""Imports point one way, by allow-list: a new dependency in the wrong layer fails the build.

Besides the standard library and modules of its own package, each layer may import only what is listed here. The
composition root (app.py, server.py, cli.py) is the only place that knows every layer.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lfsd"

# offload.py is the one named helper for blocking work; it imports only the standard library.
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": (),
    "storage": ("lfsd.core", "lfsd.offload", "botocore", "aiobotocore"),
    "db": ("lfsd.core", "lfsd.offload", "sqlalchemy", "alembic"),
    "git": ("lfsd.core", "lfsd.offload"),
    "state": ("lfsd.core", "redis"),
    "observability": ("lfsd.core", "prometheus_client"),
    "oidc": ("lfsd.core", "jwt", "cryptography"),
    "http": (
        "lfsd.core",
        "lfsd.observability",
        "lfsd.offload",
        "lfsd.memory",
        "lfsd.config",
        "aiohttp",
        "pydantic",
        "prometheus_client",
    ),
    "ssh": ("lfsd.core", "lfsd.observability", "lfsd.offload", "lfsd.config", "asyncssh"),
    # The web UI is a front end like http/: the core's use cases, rendered with Jinja2.
    "ui": ("lfsd.core", "lfsd.observability", "lfsd.config", "aiohttp", "aiohttp_jinja2", "jinja2"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _allowed(name: str, package: str) -> bool:
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(name == prefix or name.startswith(prefix + ".") for prefix in (f"lfsd.{package}", *ALLOWED[package]))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layer_imports(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in sorted(_imports(path))
        if not _allowed(name, package)
    ]
    assert not wrong, "\n".join(wrong)


def test_every_package_has_rules() -> None:
    packages = {path.name for path in SRC.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert packages - {"__pycache__"} <= set(ALLOWED), "a new package needs its rules here"


@pytest.mark.parametrize("module", ["offload.py", "memory.py"])
def test_leaf_helpers_import_only_the_standard_library(module: str) -> None:
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in _imports(SRC / module))


def test_only_the_admin_api_bodies_import_pydantic() -> None:
    """pydantic is loaded on the admin API's first request (issue 17: 9 MiB of an idle server); the modules that
    import it are imported then, and nothing on the start-up or LFS path imports them (tests/test_idle_imports.py)."""
    importers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(name.split(".")[0] == "pydantic" for name in _imports(path))
    )
    assert importers == ["http/admin_api/models.py", "http/admin_api/openapi.py"]
