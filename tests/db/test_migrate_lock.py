"""The migration lock: a file beside the SQLite database; the database server's own lock everywhere else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.migrate import upgrade
from lfsd.db.schema import SCHEMA_HEAD
from tests.e2e.harness import lfsd_env


def _read_only(command: list[str]) -> list[str]:
    """``command`` run so that a directory with mode 0555 really is read-only, even for root (CI runs as root)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's permission override"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def test_migrate_on_a_server_from_a_read_only_directory_creates_nothing(
    fresh_server_database_url: str, tmp_path: Path
) -> None:
    cwd = tmp_path / "read-only"
    cwd.mkdir()
    cwd.chmod(0o555)
    try:
        result = subprocess.run(
            _read_only([sys.executable, "-m", "lfsd", "migrate"]),
            cwd=cwd,
            env=lfsd_env(tmp_path / "data", fresh_server_database_url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"revision {SCHEMA_HEAD}" in result.stdout
        assert list(cwd.iterdir()) == []
    finally:
        cwd.chmod(0o755)


async def test_sqlite_lock_file_sits_beside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    db = Database(create_engine(parse_url(settings.effective_database_url)))
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    assert list(elsewhere.iterdir()) == []
    assert (settings.data_dir / "lfsd.db.migrate-lock").exists()
