"""Migrations on every database: step by step with data in place, down and up again, one process at a time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from lfsd.config import Settings
from lfsd.core.lockpath import MAX_LOCK_PATH_LENGTH
from lfsd.core.locks import MAX_LOCK_ID, MAX_REF_LENGTH
from lfsd.core.names import MAX_USER_NAME_LENGTH
from lfsd.core.repo import MAX_LENGTH as MAX_REPO_PATH_LENGTH
from lfsd.db.database import Database
from lfsd.db.engine import create_engine, parse_url
from lfsd.db.metadata import SchemaMismatch
from lfsd.db.migrate import current_revision, downgrade, head_revision, upgrade
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.db.tables import metadata
from lfsd.resources import open_metadata
from tests.db.conftest import fresh_database
from tests.e2e.harness import Server, cli, lfsd_env

ALL_TABLES = {
    "users",
    "tokens",
    "repos",
    "grants",
    "objects",
    "repo_objects",
    "locks",
    "audit",
    "ui_sessions",
    "ssh_keys",
}


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
        await open_metadata(settings)
    meta = await open_metadata(settings, migrate=True)
    await meta.close()
    meta = await open_metadata(settings)
    await meta.close()


async def _insert(db: Database, sql: str, **params: Any) -> None:
    async with db.transaction() as conn:
        await conn.execute(text(sql.replace(":now", "'2026-01-01 00:00:00'")), {"f": False, **params})


async def _scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.transaction() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_0003_exact_names_and_long_refs_down_and_up(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    try:
        await upgrade(db, "0002")
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('alice', :f, :f, :now)")
        await _insert(db, "INSERT INTO repos (path, is_public, created_at) VALUES ('acme/game', :f, :now)")
        await upgrade(db, "0003")
        count_alice = "SELECT COUNT(*) FROM users WHERE name = :name"
        for name in ("ALICE", "alice ", "\u0101lice"):  # equal to alice under MariaDB's default collation
            assert await _scalar(db, count_alice, name=name) == 0, name
        assert await _scalar(db, count_alice, name="alice") == 1
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('ALICE', :f, :f, :now)")
        await _insert(db, "INSERT INTO repos (path, is_public, created_at) VALUES ('acme/Game', :f, :now)")
        long_ref = "refs/heads/" + "x" * 4000
        lock = (
            "INSERT INTO locks (repo_id, path, path_key, owner_id, ref, locked_at) "
            "VALUES (1, :path, :key, 1, :ref, :now)"
        )
        await _insert(db, lock, path="a.bin", key="a" * 64, ref=long_ref)
        await _insert(db, lock, path="b.bin", key="b" * 64, ref="refs/heads/main")
        assert await _scalar(db, "SELECT ref FROM locks WHERE path = 'a.bin'") == long_ref

        async with db.transaction() as conn:  # back to 0002 needs the names that only differ in case gone
            await conn.execute(text("DELETE FROM users WHERE name = 'ALICE'"))
            await conn.execute(text("DELETE FROM repos WHERE path = 'acme/Game'"))
        await downgrade(db, "0002")
        # A ref too long for the old column is dropped, not cut into another branch's name (SQLite has no limit).
        kept = long_ref if db.dialect == "sqlite" else None
        assert await _scalar(db, "SELECT ref FROM locks WHERE path = 'a.bin'") == kept
        assert await _scalar(db, "SELECT ref FROM locks WHERE path = 'b.bin'") == "refs/heads/main"
        await upgrade(db, "0003")
        assert await current_revision(db) == "0003"
        assert await _scalar(db, count_alice, name="ALICE") == 0
    finally:
        await db.dispose()


async def test_0004_administration_down_and_up_keeps_tokens_grants_and_locks(fresh_database_url: str) -> None:
    """Adding and dropping columns must not rebuild ``users`` (SQLite's foreign keys would cascade the rebuild into
    tokens, grants and locks); a tombstone of a deleted user goes on the way down."""
    db = Database(create_engine(parse_url(fresh_database_url)))
    try:
        await upgrade(db, "0003")
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('alice', :f, :f, :now)")
        await _insert(db, "INSERT INTO repos (path, is_public, created_at) VALUES ('acme/game', :f, :now)")
        await _insert(db, "INSERT INTO tokens (user_id, digest, created_at) VALUES (1, :d, :now)", d="d" * 64)
        await _insert(db, "INSERT INTO grants (repo_id, user_id, permission) VALUES (1, 1, 2)")
        lock = "INSERT INTO locks (repo_id, path, path_key, owner_id, locked_at) VALUES (1, 'a.bin', :k, 1, :now)"
        await _insert(db, lock, k="a" * 64)

        await upgrade(db, "0004")
        assert await _scalar(db, "SELECT scope FROM tokens") == 2  # old tokens could write: they still can
        for table in ("tokens", "grants", "locks"):
            assert await _scalar(db, f"SELECT COUNT(*) FROM {table}") == 1, table  # noqa: S608 - our table names
        await _insert(
            db,
            "INSERT INTO users (name, is_admin, disabled, created_at, deleted_at) VALUES ('bob (deleted #2)', :f, :t,"
            " :now, :now)",
            t=True,
        )
        await _insert(
            db,
            "INSERT INTO audit (at, actor, action, target, address, outcome, details) "
            "VALUES (:now, 'cli:root', 'user.add', 'user:alice', 'local', 'ok', '{}')",
        )

        await downgrade(db, "0003")
        assert "audit" not in await _tables(db)
        assert await _scalar(db, "SELECT COUNT(*) FROM users") == 1
        for table in ("tokens", "grants", "locks"):
            assert await _scalar(db, f"SELECT COUNT(*) FROM {table}") == 1, table  # noqa: S608 - our table names
        await upgrade(db, "0004")
        assert await current_revision(db) == "0004"
    finally:
        await db.dispose()


def _backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "mariadb" if url.startswith("mysql") else "postgresql"


@pytest.fixture
def metadata_database_url(fresh_database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend, for the schema that tables.py creates."""
    place = tmp_path / "metadata"
    place.mkdir()
    yield from fresh_database(_backend(fresh_database_url), place)


def _describe(conn: Connection) -> dict[str, tuple[object, ...]]:
    sqlite = conn.dialect.name == "sqlite"
    found: dict[str, tuple[object, ...]] = {}
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        for column in inspector.get_columns(table.name):
            kind = column["type"]
            # SQLite enforces no VARCHAR length, and 0003 leaves its declared lengths alone.
            length = None if sqlite else getattr(kind, "length", None)
            collation = getattr(kind, "collation", None)
            found[f"{table.name}.{column['name']}"] = (type(kind).__name__, length, collation, column["nullable"])
    return found


async def test_a_migrated_database_is_the_one_tables_py_describes(
    fresh_database_url: str, metadata_database_url: str
) -> None:
    migrated = Database(create_engine(parse_url(fresh_database_url)))
    created = Database(create_engine(parse_url(metadata_database_url)))
    try:
        await upgrade(migrated)
        async with created.transaction(bounded=False) as conn:
            await conn.run_sync(metadata.create_all)
        async with migrated.transaction() as conn:
            want = await conn.run_sync(_describe)
        async with created.transaction() as conn:
            got = await conn.run_sync(_describe)
        assert got == want
        if migrated.dialect == "mysql":
            assert want["users.name"][2] == want["repos.path"][2] == want["locks.path"][2] == "utf8mb4_nopad_bin"
        if migrated.dialect != "sqlite":
            # What the edge accepts is what the migrated columns hold (see lfsd.core.locks, lockpath, names).
            assert want["locks.ref"][1] == MAX_REF_LENGTH
            assert want["locks.path"][1] == MAX_LOCK_PATH_LENGTH
            assert want["users.name"][1] == MAX_USER_NAME_LENGTH
            assert want["repos.path"][1] == MAX_REPO_PATH_LENGTH
        assert want["locks.id"][0] == "INTEGER" and MAX_LOCK_ID == 2**31 - 1  # 32-bit on every database
    finally:
        await migrated.dispose()
        await created.dispose()


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


async def test_0005_objects_removed_at_down_and_up(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    try:
        await upgrade(db, "0005")
        await _insert(
            db, "INSERT INTO repos (path, is_public, created_at, objects_removed_at) VALUES ('a/b', :f, :now, :now)"
        )
        await downgrade(db, "0004")
        assert await _scalar(db, "SELECT COUNT(*) FROM repos") == 1
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        assert await _scalar(db, "SELECT COUNT(*) FROM repos WHERE objects_removed_at IS NULL") == 1
    finally:
        await db.dispose()


async def test_0006_ui_sessions_and_object_sizes_down_and_up(fresh_database_url: str) -> None:
    db = Database(create_engine(parse_url(fresh_database_url)))
    oid = "a" * 64
    try:
        await upgrade(db, "0005")
        await _insert(db, "INSERT INTO repos (path, is_public, created_at) VALUES ('a/b', :f, :now)")
        await _insert(db, "INSERT INTO objects (oid, size, created_at) VALUES (:oid, 1234, :now)", oid=oid)
        await _insert(db, "INSERT INTO repo_objects (repo_id, oid, created_at) VALUES (1, :oid, :now)", oid=oid)
        await upgrade(db, "0006")
        # Existing links get their object's size, so they sort by size like new ones.
        assert await _scalar(db, "SELECT size FROM repo_objects") == 1234
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('u', :f, :f, :now)")
        await _insert(
            db,
            "INSERT INTO ui_sessions (digest, user_id, csrf, created_at, expires_at, last_seen_at) "
            "VALUES (:d, 1, 'c', :now, :now, :now)",
            d="b" * 64,
        )
        await downgrade(db, "0005")
        assert "ui_sessions" not in await _tables(db)
        assert await _scalar(db, "SELECT COUNT(*) FROM repo_objects") == 1
        await upgrade(db, "0006")
        assert await _scalar(db, "SELECT size FROM repo_objects") == 1234
        assert await _scalar(db, "SELECT COUNT(*) FROM ui_sessions") == 0
    finally:
        await db.dispose()


async def test_0007_ssh_keys_down_and_up(fresh_database_url: str) -> None:
    """One key, one user (the fingerprint is unique); deleting a user takes their keys; down drops the table only."""
    db = Database(create_engine(parse_url(fresh_database_url)))
    key = (
        "INSERT INTO ssh_keys (user_id, key_type, public_key, fingerprint, created_at) "
        "VALUES (:u, 'ssh-ed25519', 'AAAA', :fp, :now)"
    )
    try:
        await upgrade(db, "0006")
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('alice', :f, :f, :now)")
        await _insert(db, "INSERT INTO users (name, is_admin, disabled, created_at) VALUES ('bob', :f, :f, :now)")
        await upgrade(db, "0007")
        await _insert(db, key, u=1, fp="a" * 64)
        with pytest.raises(IntegrityError):
            await _insert(db, key, u=2, fp="a" * 64)
        await _insert(db, key, u=2, fp="b" * 64)
        await _insert(db, "DELETE FROM users WHERE name = 'bob'")
        assert await _scalar(db, "SELECT COUNT(*) FROM ssh_keys") == 1
        await downgrade(db, "0006")
        assert "ssh_keys" not in await _tables(db)
        assert await _scalar(db, "SELECT COUNT(*) FROM users") == 1
        await upgrade(db, "0007")
        assert await _scalar(db, "SELECT COUNT(*) FROM ssh_keys") == 0
    finally:
        await db.dispose()
