"""Statements whose spelling differs between SQLite, MySQL/MariaDB and PostgreSQL.

Each dialect's module is imported when a statement for it is first built: a server uses one database, and the other
dialects' modules cost about 3 MiB of resident memory (issue 17).
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.sql.dml import Insert


def insert_ignore(table: Table, dialect: str) -> Insert:
    """An INSERT that skips rows whose key already exists: the database arbitrates concurrent writers."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        # Not INSERT IGNORE: that would also turn foreign-key and other errors into warnings.
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({column.name: column for column in table.primary_key.columns})
    raise ValueError(f"unsupported dialect {dialect!r}")
