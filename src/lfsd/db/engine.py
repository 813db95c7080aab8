"""Database URLs, their async drivers, TLS, and engine and pool settings."""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.util.concurrency import await_

from lfsd.db.aio import AsyncEngine, create_async_engine

_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
# TLS settings in the URL's query, named as libpq names them; they work for MySQL URLs too.
_TLS_PARAMS: Final = ("ssl", "sslmode", "sslrootcert", "sslcert", "sslkey")


class DatabaseUrlError(ValueError):
    """The configured database URL cannot be used. The message never contains the password."""


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Pool settings for MySQL and PostgreSQL (SQLite uses one connection per process)."""

    size: int = 10
    max_overflow: int = 10
    recycle_seconds: int = 1800
    timeout_seconds: float = 10.0
    pre_ping: bool = True
    connect_timeout_seconds: float = 5.0
    statement_timeout_seconds: float = 30.0


def parse_url(url: str, password: str | None = None) -> URL:
    """The URL with its async driver; ``password`` (from the environment) replaces the URL's."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseUrlError("the database URL is not a valid URL") from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise DatabaseUrlError(
            f"unsupported database {backend!r}: use sqlite:///PATH, mysql://… (MySQL, MariaDB, Aurora) or postgresql://…"
        )
    driver = _DRIVERS[backend]
    named = parsed.drivername.partition("+")[2] or None  # all of it: "asyncpg+x" is not asyncpg
    if named is not None and named != driver.partition("+")[2]:
        # The connect arguments and SQLite's one-trip transactions (db/sqlite_trip.py) are written for these
        # drivers; another one would fail at the first connection, or later, with its own words.
        raise DatabaseUrlError(
            f"lfsd talks to {backend} through {driver.partition('+')[2]} only: write {backend}://… without '+{named}'"
        )
    parsed = parsed.set(drivername=driver)
    if password is not None:
        parsed = parsed.set(password=password)
    return parsed


def _tls_context(query: dict[str, str]) -> ssl.SSLContext | None:
    mode = (query.get("sslmode") or query.get("ssl") or "").lower()
    if mode in ("", "disable", "false", "0", "prefer", "allow"):
        return None
    if mode not in ("require", "true", "1", "verify-ca", "verify-full"):
        raise DatabaseUrlError(f"unknown sslmode {mode!r}: use disable, require, verify-ca or verify-full")
    context = ssl.create_default_context(cafile=query.get("sslrootcert"))
    if query.get("sslcert"):
        context.load_cert_chain(query["sslcert"], query.get("sslkey"))
    if mode in ("require", "true", "1"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify-ca":
        context.check_hostname = False
    return context


SQLITE_BUSY_SECONDS: Final = 10.0
_WAL_RETRY_SECONDS: Final = 0.01


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout makes a writer wait for the lock instead of failing at once. WAL lets readers run beside the
    # writer and several processes share the file. FULL syncs the WAL at every commit: with NORMAL a power loss can
    # drop the last commits, and with them the record of an upload already answered with 200.
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    _enter_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _enter_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting as busy_timeout would (a last try may wait one busy_timeout more).

    Turning a new file into WAL while another process holds a write lock on it fails at once, without SQLite's
    busy handler: two workers of ``serve --workers 2`` (or a server and a CLI command) opening a new database
    together did, and the worker that lost stopped the server (CI, stop 15).
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
        # The pool connects inside SQLAlchemy's greenlet on the event loop: wait there without blocking the loop.
        await_(asyncio.sleep(_WAL_RETRY_SECONDS))


def _sqlite_reset(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
    """The pool's reset on return, for SQLite: roll back only a transaction that is still open.

    The pool's own reset rolls back unconditionally, after every commit too, and through aiosqlite each rollback is
    one more trip to the driver's thread: one of six per read-only transaction (issue 17). SQLite knows whether a
    transaction is open (``in_transaction``); when the driver cannot say, the rollback runs as before.
    """
    if reset_state.terminate_only:
        return
    try:
        open_transaction = getattr(record.driver_connection, "in_transaction", True)
    except Exception:  # a connection that cannot say (closed, broken): the rollback decides
        open_transaction = True
    if open_transaction is not False:
        dbapi_connection.rollback()


def create_engine(url: URL, pool: PoolOptions | None = None) -> AsyncEngine:
    pool = pool or PoolOptions()
    backend = url.get_backend_name()
    if backend == "sqlite":
        # SQLite has one writer at a time. Several pooled connections in one process would fight for the lock with
        # busy-wait sleeps (measured: 4,000 sleeps and 6 CPU s for 1,000 small uploads); one connection makes them
        # queue in the pool instead. Other processes on the same file still wait through busy_timeout.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, pool_reset_on_return=None)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
        return engine

    query = {key: str(value) for key, value in url.query.items()}
    tls = _tls_context(query)
    url = url.difference_update_query(_TLS_PARAMS)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["timeout"] = pool.connect_timeout_seconds
        statement_ms = int(pool.statement_timeout_seconds * 1000)
        connect_args["server_settings"] = {"statement_timeout": str(statement_ms), "application_name": "lfsd"}
    else:
        connect_args["connect_timeout"] = pool.connect_timeout_seconds
    if tls is not None:
        connect_args["ssl"] = tls
    return create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle_seconds,
        pool_timeout=pool.timeout_seconds,
        pool_pre_ping=pool.pre_ping,
        connect_args=connect_args,
    )
