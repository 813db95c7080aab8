"""Transactions, pool statistics, and the one place where driver errors become domain errors."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Executable, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import await_

from lfsd.core.errors import ServiceUnavailable
from lfsd.db.aio import AsyncConnection, AsyncEngine
from lfsd.db.sqlite_prepared import HOT_OPTION
from lfsd.db.sqlite_trip import SqliteTransactions

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=Executable)

log = logging.getLogger("lfsd.db")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A time as a driver returns it, aware and in UTC: naive values are UTC, and SQLite's raw rows
    (``SqliteHotPath.fetch``) hold ISO text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def describe(exc: BaseException) -> str:
    """A driver failure in one line, for operators: its class and first line (drivers do not print passwords)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class Waiter(Protocol):
    """Awaits, from the synchronous work ``Database.run_sync`` runs, something that lives on the event loop (the
    store's answer in the middle of a link): the loop stays free meanwhile."""

    def __call__(self, awaitable: Awaitable[R], /) -> R: ...


class Rows(Protocol):
    """What the synchronous transactions use of a statement's result (a ``CursorResult`` has it all)."""

    @property
    def rowcount(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def all(self) -> Sequence[Any]: ...

    def one(self) -> Any: ...


class SqlConnection(Protocol):
    """The connection a synchronous transaction runs its statements on: SQLAlchemy's ``Connection``, or on SQLite the
    driver's connection with the hot statements compiled once (``sqlite_trip.PreparedConnection``)."""

    def execute(self, statement: Executable, parameters: Any = None, /) -> Rows: ...


SyncWork = Callable[[SqlConnection, Waiter], T]
"""One transaction's statements, written once as synchronous SQLAlchemy Core (``execute`` only)."""


def hot_statement(statement: E) -> E:
    """``statement``, marked as built once and kept for a ``run_sync`` transaction's hot path: on SQLite it is then
    compiled once and run as one plain ``sqlite3`` call (db/sqlite_trip.py); elsewhere the mark changes nothing."""
    return statement.execution_options(**{HOT_OPTION: True})


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Like Go's ``sql.DBStats``: connections open, in use and idle, and how often and long callers waited."""

    max_open: int
    open: int
    in_use: int
    idle: int
    waits: int
    wait_seconds: float


class Database:
    """Hands out transactions; connection-level failures become ``ServiceUnavailable`` (503 + Retry-After)."""

    def __init__(self, engine: AsyncEngine, *, timeout_seconds: float = 30.0) -> None:
        self.engine = engine
        self._timeout = timeout_seconds
        self._waits = 0
        self._wait_seconds = 0.0
        # SQLite: a synchronous transaction runs whole in the driver's thread, one trip (db/sqlite_trip.py).
        self._sqlite = SqliteTransactions(engine) if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _exhausted(self) -> bool:
        pool = self.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return False
        return pool.checkedin() == 0 and pool.checkedout() >= pool.size() + max(pool._max_overflow, 0)

    def pool_stats(self) -> PoolStats:
        pool = self.engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            in_use, idle = pool.checkedout(), pool.checkedin()
            max_open = pool.size() + max(pool._max_overflow, 0)
        else:
            in_use = idle = max_open = 0
        return PoolStats(max_open, in_use + idle, in_use, idle, self._waits, self._wait_seconds)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        checked_out = self.checkout_timer()
        async with self.engine.connect() as conn:
            checked_out()
            yield conn

    def checkout_timer(self) -> Callable[[], None]:
        """Called before a checkout from the pool; the function it returns, once the connection is there, counts
        the wait in ``pool_stats`` if every connection was in use (also for SQLite's trips, db/sqlite_trip.py)."""
        if not self._exhausted():
            return _nothing
        started = time.monotonic()

        def checked_out() -> None:
            self._waits += 1
            self._wait_seconds += time.monotonic() - started

        return checked_out

    @asynccontextmanager
    async def transaction(self, *, bounded: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success. ``bounded``: give up after the timeout."""
        with self.driver_errors():
            async with asyncio.timeout(self._timeout if bounded else None), self._connection() as conn, conn.begin():
                yield conn

    async def run_sync(self, work: SyncWork[T], *, bounded: bool = True) -> T:
        """``work`` as one transaction on a synchronous ``Connection``, committed when it returns, rolled back when it
        raises; errors mapped as ``transaction`` maps them. ``work`` may wait for the loop through its ``Waiter``.

        MySQL and PostgreSQL: SQLAlchemy's greenlet adaption on a pooled connection (``run_sync``), as costly per
        statement as ``transaction``. SQLite: the whole of it in the driver's thread, one trip (issue 17)."""
        if self._sqlite is not None:
            with self.driver_errors():
                return await self._sqlite.run(work, self._timeout if bounded else None, self.checkout_timer())
        async with self.transaction(bounded=bounded) as conn:
            return await conn.run_sync(work, await_)

    async def release_memory(self) -> None:
        """SQLite: hand the connection's page cache back to the heap (``PRAGMA shrink_memory``), for a trim of an idle
        server; the pages are read again from the OS's cache when next needed. Nothing on the network databases."""
        if self.dialect == "sqlite":
            async with self.transaction() as conn:
                await conn.execute(text("PRAGMA shrink_memory"))

    @contextmanager
    def driver_errors(self) -> Iterator[None]:
        """Driver failures become ``ServiceUnavailable`` (and are logged); ``IntegrityError`` goes through, for the
        caller to say which rule it broke."""
        try:
            yield
        except IntegrityError:
            raise
        except TimeoutError as exc:
            self._log_failure(exc)
            raise ServiceUnavailable("the metadata database did not answer in time") from exc
        except (DBAPIError, PoolTimeoutError, OSError, sqlite3.Error) as exc:
            self._log_failure(exc)
            raise ServiceUnavailable("the metadata database is unavailable") from exc
        except SQLAlchemyError as exc:
            self._log_failure(exc)
            raise ServiceUnavailable("the metadata database failed") from exc

    @property
    def timeout_seconds(self) -> float:
        return self._timeout

    def log_failure(self, exc: BaseException) -> None:
        """A driver failure, logged as ``transaction`` logs it (for adapters that talk to the driver directly)."""
        self._log_failure(exc)

    def _log_failure(self, exc: BaseException) -> None:
        log.warning("metadata database %s: %s", self.engine.url.render_as_string(hide_password=True), describe(exc))

    async def ping(self) -> None:
        async with self.transaction() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _nothing() -> None:
    """A checkout that did not wait."""
