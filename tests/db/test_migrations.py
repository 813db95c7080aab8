"""Migrations on every database: step by step with data in place, down and up again, one process at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from lfsd.app import Metadata, SchemaMismatch
from lfsd.config import Settings
from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.migrate import current_revision, downgrade, head_revision, upgrade
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from tests.e2e.harness import Server, cli, lfsd_env

ALL_TABLES = {"users", "tokens", "repos", "grants", "objects", "repo_objects", "locks"}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_with_data_then_downgrade_and_again(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    try:
        assert await schema_revision(db) is None
        await upgrade(db, "0001")
        assert await current_revision(db) == "0001"
        async with db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO repos (path, is_public, created_at) VALUES ('a/b', :f, '2026-01-01 00:00:00')"),
                {"f": False},
            )
        await upgrade(db)
        assert await current_revision(db) == head_revision() == await schema_revision(db)
        async with db.transaction() as conn:
            enabled = (await conn.execute(text("SELECT locking_enabled FROM repos"))).scalar_one()
        assert enabled in (1, True)
        assert await _tables(db) >= ALL_TABLES

        await downgrade(db, "base")
        assert await _tables(db) <= {"alembic_version"}
        await upgrade(db)
        assert await _tables(db) >= ALL_TABLES
    finally:
        await db.dispose()


async def test_server_databases_are_not_migrated_without_being_asked(
    fresh_server_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=fresh_server_database_url)
    with pytest.raises(SchemaMismatch, match="lfsd migrate"):
        await Metadata.open(settings)
    meta = await Metadata.open(settings, migrate=True)
    await meta.close()
    meta = await Metadata.open(settings)
    await meta.close()


def test_migrate_check_and_serve_refusal(fresh_server_database_url: str, tmp_path: Path) -> None:
    fresh_database_url = fresh_server_database_url
    check = cli(tmp_path, "migrate", "--check", database_url=fresh_database_url, check=False)
    assert check.returncode == 1 and "needs" in check.stderr
    refused = cli(tmp_path, "serve", "--listen", "127.0.0.1:0", database_url=fresh_database_url, check=False)
    assert refused.returncode == 1 and "lfsd migrate" in refused.stderr and "Traceback" not in refused.stderr
    assert "(head" in cli(tmp_path, "migrate", database_url=fresh_database_url).stdout
    assert "current" in cli(tmp_path, "migrate", "--check", database_url=fresh_database_url).stdout


def test_serve_with_migrate_flag(fresh_database_url: str, tmp_path: Path) -> None:
    server = Server.start(tmp_path / "data", database_url=fresh_database_url, args=("--migrate",))
    assert server.stop() == 0
    assert "current" in cli(tmp_path, "migrate", "--check", database_url=fresh_database_url).stdout


def test_concurrent_migrations_migrate_once(fresh_database_url: str, tmp_path: Path) -> None:
    env = lfsd_env(tmp_path, fresh_database_url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "lfsd", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, results
    assert all(f"revision {SCHEMA_HEAD}" in out for out, _ in results)
