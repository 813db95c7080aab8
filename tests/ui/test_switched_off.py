"""LFSD_UI=false: no /ui/ routes, and nothing of the UI (Jinja2, aiohttp-jinja2, lfsd.ui) is even imported. On (the
default), the routes are there but Jinja2 loads with the first page, not at start-up (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, sys
from lfsd.app import build_app
from lfsd.config import Settings
app = build_app(Settings(data_dir=sys.argv[1]))
routes = sorted({r.resource.canonical for r in app.router.routes() if r.resource is not None})
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("jinja2", "aiohttp_jinja2", "markupsafe")
                or name == "lfsd.ui" or name.startswith(("lfsd.ui.", "lfsd.ui_root")))
print(json.dumps({"routes": routes, "loaded": loaded}))
"""


def _build(tmp_path: Path, ui: str) -> dict[str, list[str]]:
    env = {"LFSD_UI": ui, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found: dict[str, list[str]] = json.loads(result.stdout)
    return found


def test_off_means_not_loaded(tmp_path: Path) -> None:
    off = _build(tmp_path, "false")
    assert off["loaded"] == []
    assert not any(route.startswith("/ui") for route in off["routes"])


def test_on_by_default(tmp_path: Path) -> None:
    on = _build(tmp_path, "true")
    assert "lfsd.ui.web" in on["loaded"]
    assert not any(name.split(".")[0] in ("jinja2", "aiohttp_jinja2", "markupsafe") for name in on["loaded"])
    assert "/ui" in on["routes"]
