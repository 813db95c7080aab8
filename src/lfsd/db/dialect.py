"""Statements whose spelling differs between SQLite, MySQL/MariaDB and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_ignore(table: Table, dialect: str) -> Insert:
    """An INSERT that skips rows whose key already exists: the database arbitrates concurrent writers."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(table).prefix_with("IGNORE")
    raise ValueError(f"unsupported dialect {dialect!r}")
