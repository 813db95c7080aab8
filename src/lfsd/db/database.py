"""Transactions, pool statistics, and the one place where driver errors become domain errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool

from lfsd.core.errors import ServiceUnavailable
from lfsd.db.aio import AsyncConnection, AsyncEngine

log = logging.getLogger("lfsd.db")


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """A driver failure in one line, for operators: its class and first line (drivers do not print passwords)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


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
        waiting = self._exhausted()
        started = time.monotonic()
        async with self.engine.connect() as conn:
            if waiting:
                self._waits += 1
                self._wait_seconds += time.monotonic() - started
            yield conn

    @asynccontextmanager
    async def transaction(self, *, bounded: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success. ``bounded``: give up after the timeout."""
        try:
            async with asyncio.timeout(self._timeout if bounded else None), self._connection() as conn, conn.begin():
                yield conn
        except IntegrityError:
            raise
        except TimeoutError as exc:
            self._log_failure(exc)
            raise ServiceUnavailable("the metadata database did not answer in time") from exc
        except (DBAPIError, PoolTimeoutError, OSError) as exc:
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
