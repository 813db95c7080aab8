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
        # Not INSERT IGNORE: that would also turn foreign-key and other errors into warnings.
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({column.name: column for column in table.primary_key.columns})
    raise ValueError(f"unsupported dialect {dialect!r}")
