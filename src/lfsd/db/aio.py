"""SQLAlchemy Core's engine, awaited: the few calls lfsd makes, without ``sqlalchemy.ext.asyncio``.

``sqlalchemy.ext.asyncio`` imports its ``AsyncSession`` and with it the whole ORM (measured: 6.4 MiB of the
server's resident size, issue 17), which lfsd never uses. What lfsd needs of it is small: a connection, a transaction
as a context manager, ``execute``/``scalar``/``run_sync`` and the raw driver connection. These do what
SQLAlchemy's own ``AsyncEngine``/``AsyncConnection`` do (2.1, ``ext/asyncio/engine.py``): each call runs the sync
Core method through ``greenlet_spawn``, which the async dialects (aiosqlite, asyncpg, asyncmy) need; a connection's
close runs to completion even when the caller is cancelled, so it always goes back to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Concatenate, Final, ParamSpec, TypeVar, TypeVarTuple, overload

from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine, Transaction
from sqlalchemy.engine import create_engine as create_sync_engine
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.util.concurrency import greenlet_spawn

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


# SQLAlchemy's own create_async_engine passes create_engine the private ``_is_async``, which picks a driver's async
# dialect (``Dialect.get_async_dialect_cls``) where the driver name means a sync one too. Of SQLAlchemy's drivers
# only psycopg does, and its async dialect has a documented name of its own; for every other driver the name's one
# dialect is the async one or is refused below. tests/db/test_engine.py checks SQLAlchemy's list of drivers.
_ASYNC_NAMES: Final = {"psycopg": "psycopg_async"}


def async_url(url: URL) -> URL:
    """``url`` naming the dialect an async engine uses, as ``_is_async`` would choose it."""
    driver = _ASYNC_NAMES.get(url.get_driver_name())
    return url if driver is None else url.set(drivername=f"{url.get_backend_name()}+{driver}")


def create_async_engine(url: URL, **options: Any) -> AsyncEngine:
    """``sqlalchemy.create_engine`` for an async driver (the pool is then the asyncio-adapted one)."""
    return AsyncEngine(create_sync_engine(async_url(url), **options))


async def _run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end even if the caller is cancelled meanwhile; re-raise the cancellation after (as
    SQLAlchemy does for a connection's close: abandoned halfway, the connection would never return to the pool)."""
    task = asyncio.create_task(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done():
                raise
            cancelled = err
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


class AsyncEngine:
    def __init__(self, sync_engine: Engine) -> None:
        if not sync_engine.dialect.is_async:
            raise InvalidRequestError(f"the driver {sync_engine.dialect.driver!r} is not async")
        self.sync_engine = sync_engine

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    @property
    def url(self) -> URL:
        return self.sync_engine.url

    def connect(self) -> AsyncConnection:
        """A connection from the pool: ``async with engine.connect() as conn``."""
        return AsyncConnection(self)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends without an error."""
        async with self.connect() as conn, conn.begin():
            yield conn

    async def raw_connection(self) -> PoolProxiedConnection:
        """A driver-level connection checked out of the pool, without a ``Connection`` around it (its ``close``
        checks it back in)."""
        raw: PoolProxiedConnection = await greenlet_spawn(self.sync_engine.raw_connection)
        return raw

    async def dispose(self) -> None:
        await greenlet_spawn(self.sync_engine.dispose)


class AsyncConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sync: Connection | None = None

    async def __aenter__(self) -> AsyncConnection:
        if self._sync is not None:
            raise InvalidRequestError("the connection is already started")
        self._sync = await greenlet_spawn(self.engine.sync_engine.connect)
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await _run_to_completion(self.close())

    @property
    def sync_connection(self) -> Connection:
        if self._sync is None:
            raise InvalidRequestError("the connection is not started: use `async with engine.connect()`")
        return self._sync

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    def begin(self) -> AsyncTransaction:
        return AsyncTransaction(self)

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*Ts],
        parameters: Parameters = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> CursorResult[*Ts]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        parameters: Parameters = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> CursorResult[*tuple[Any, ...]]: ...

    async def execute(
        self,
        statement: Executable,
        parameters: Parameters = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> CursorResult[*tuple[Any, ...]]:
        result: CursorResult[*tuple[Any, ...]] = await greenlet_spawn(
            self.sync_connection.execute,
            statement,
            parameters,
            execution_options=execution_options,
            _require_await=True,
        )
        return result

    async def scalar(self, statement: Executable, parameters: Parameters = None) -> Any:
        result = await self.execute(statement, parameters)
        return result.scalar()

    async def run_sync(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(sync_connection, ...)`` inline on the event loop, its driver calls awaited through the greenlet."""
        result: T = await greenlet_spawn(fn, self.sync_connection, *args, _require_await=False, **kwargs)
        return result

    async def get_raw_connection(self) -> PoolProxiedConnection:
        """The pooled driver-level connection (``.driver_connection`` is the async driver's own)."""
        raw: PoolProxiedConnection = await greenlet_spawn(getattr, self.sync_connection, "connection")
        return raw

    async def commit(self) -> None:
        await greenlet_spawn(self.sync_connection.commit)

    async def rollback(self) -> None:
        await greenlet_spawn(self.sync_connection.rollback)

    async def invalidate(self) -> None:
        """Discard the driver connection: the pool opens a new one for the next checkout."""
        await greenlet_spawn(self.sync_connection.invalidate)

    async def close(self) -> None:
        """Back to the pool (rolling back a transaction left open)."""
        if self._sync is not None:
            await greenlet_spawn(self._sync.close)


class AsyncTransaction:
    """``async with conn.begin():`` commits when the block ends without an error, else rolls back."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._sync: Transaction | None = None

    async def __aenter__(self) -> AsyncTransaction:
        self._sync = await greenlet_spawn(self._connection.sync_connection.begin)
        self._sync.__enter__()
        return self

    async def __aexit__(
        self, type_: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._sync is not None
        await greenlet_spawn(self._sync.__exit__, type_, value, traceback)

    async def commit(self) -> None:
        assert self._sync is not None
        await greenlet_spawn(self._sync.commit)

    async def rollback(self) -> None:
        assert self._sync is not None
        await greenlet_spawn(self._sync.rollback)
