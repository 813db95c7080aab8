"""SQLite's hot statements in one trip to the driver's thread per transaction (issue 17).

Through SQLAlchemy's aiosqlite adapter every statement is four trips between the event loop and aiosqlite's thread
(cursor, execute, fetch, close) and a commit one more; on this machine each trip costs tens of microseconds of CPU
(futex wake-ups and GIL hand-overs) whatever the statement: about 40 % of a batch's server CPU. Here the reads every
batch (and every transfer authorized by credentials) runs are plain ``sqlite3`` calls inside one function that
aiosqlite's thread runs as a whole, one trip. Write transactions written as synchronous SQLAlchemy Core
(``Database.run_sync``: the link, with its usage counters and the collector's claims) run the same way, whole, in
one trip (``SqliteTransactions``): their hot statements as plain ``sqlite3`` calls (``PreparedConnection``), any
other statement through a synchronous SQLAlchemy ``Connection`` over the same ``sqlite3`` connection.

The connection is still checked out of the engine's pool (one connection per process for SQLite), so these
transactions queue with every other one exactly as before; the SQL is the SQLAlchemy statement's own, compiled once
for this dialect, and values (and rows) go through the column types' own processors. Driver errors are mapped by
``Database.driver_errors``, as for every transaction. Only SQLite takes this path: the network databases' drivers
make one round trip per statement anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from sqlalchemy import Engine, Select, Update, create_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn

from lfsd.core.oid import Oid
from lfsd.db.aio import AsyncEngine
from lfsd.db.sqlite_prepared import Prepared, PreparedConnection, PreparedStatement

if TYPE_CHECKING:
    from lfsd.db.database import Database, SyncWork

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")

SizesQuery = tuple[str, Select[tuple[str, int]], dict[str, object]]
"""A sizes query's shape (its cache key), the query (oids the expanding parameter ``oids``) and its parameters."""

IN_CHUNK: Final = 500  # bound the number of bind parameters per statement, as the SQLAlchemy path does


class SqliteHotPath:
    """The hot reads (the index's sizes queries, a repository with its grant), one trip each."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._statements: dict[str, PreparedStatement] = {}

    async def sizes(
        self, shape: str, query: Select[tuple[str, int]], parameters: dict[str, object], oids: Iterable[Oid]
    ) -> dict[Oid, int]:
        """``query`` (one per ``shape``, its oids the expanding parameter ``oids``) for ``oids``: every chunk of
        the IN list in the same trip."""
        wanted = [str(oid) for oid in oids]
        if not wanted:
            return {}
        prepared = self.prepared(shape, query)
        return await self._run(lambda conn: _read_sizes(conn, prepared, parameters, wanted))

    async def sizes_then_rest(
        self, first: SizesQuery, rest: SizesQuery, oids: Iterable[Oid]
    ) -> tuple[dict[Oid, int], dict[Oid, int]]:
        """``first`` (as ``sizes`` takes it: shape, query, parameters) for ``oids``, then ``rest`` for the oids
        ``first`` did not find, both in the same trip: an upload batch's held, then readable, sizes (issue 17)."""
        wanted = [str(oid) for oid in oids]
        if not wanted:
            return {}, {}
        (first_shape, first_query, first_parameters), (rest_shape, rest_query, rest_parameters) = first, rest
        one, other = self.prepared(first_shape, first_query), self.prepared(rest_shape, rest_query)

        def read(conn: sqlite3.Connection) -> tuple[dict[Oid, int], dict[Oid, int]]:
            found = _read_sizes(conn, one, first_parameters, wanted)
            left = [oid for oid in wanted if oid not in found]
            return found, _read_sizes(conn, other, rest_parameters, left) if left else {}

        return await self._run(read)

    async def fetch(self, key: str, query: Select[Any], parameters: dict[str, object]) -> list[tuple[Any, ...]]:
        """The rows of ``query`` (one per ``key``, without an IN list) for ``parameters``, as the driver returns
        them (no result processing: for columns whose values the caller converts itself)."""
        sql, values = self.prepared(key, query).bind(parameters)

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = conn.execute(sql, values).fetchall()
            return rows

        return await self._run(read)

    def prepared(self, key: str, query: Select[Any] | Update) -> PreparedStatement:
        """``query`` compiled once per ``key``, for ``run``: ``bind`` gives its SQL and values."""
        prepared = self._statements.get(key)
        if prepared is None:
            prepared = self._statements[key] = PreparedStatement.of(query, self._db.engine.dialect)
        return prepared

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one trip: reads, and writes only inside ``write_transaction`` (committed before it returns)."""
        return await self._run(work)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` (reads) in aiosqlite's thread; the pool's connection held meanwhile."""
        with self._db.driver_errors():
            db = self._db
            checked_out = db.checkout_timer()
            return await one_trip(db.engine, db.timeout_seconds, checked_out, threading.Event(), _transaction, work)


async def one_trip(
    engine: AsyncEngine,
    time_limit: float | None,
    checked_out: Callable[[], None],
    abandoned: threading.Event,
    function: Callable[[sqlite3.Connection, A], T],
    argument: A,
) -> T:
    """``function(connection, argument)`` in aiosqlite's thread, one trip, on the pool's connection (held meanwhile:
    other transactions queue in the pool as before). ``abandoned`` is set when the caller is cancelled or times out
    while it runs: the thread cannot be stopped, but a write transaction then rolls back instead of committing.
    ``checked_out`` is called once the pool has handed the connection (``Database.checkout_timer``). Raises
    ``TimeoutError`` and the driver's errors, for ``Database.driver_errors`` to map."""
    pool = engine.sync_engine.pool
    async with asyncio.timeout(time_limit):
        # The pool's own checkout and return (its reset event included), without the Connection objects around
        # them; in a greenlet because a checkout may have to wait for the connection in use.
        pooled = await greenlet_spawn(pool.connect)
        checked_out()
        try:
            driver = pooled.driver_connection  # aiosqlite.Connection
            if not getattr(driver, "_running", False) or getattr(driver, "_connection", None) is None:
                raise sqlite3.OperationalError("the driver's connection is closed")
            # aiosqlite's own queue to its thread (``_execute``, what each of its public calls uses), awaited in
            # this task (no task or shield of its own: each is one more turn of the loop); the version is pinned in
            # constraints.txt and tests/db/test_sqlite_trip.py fails if it changes.
            try:
                result: T = await driver._execute(function, driver._conn, argument)  # type: ignore[union-attr]
            except asyncio.CancelledError:
                # The thread cannot be stopped: the connection goes back to the pool only once it is done, which a
                # no-op queued behind it tells (the cancelled call's own outcome is dropped by aiosqlite).
                abandoned.set()
                with contextlib.suppress(ValueError):  # closed meanwhile: nothing runs any more
                    await asyncio.shield(driver._execute(_nothing))  # type: ignore[union-attr]
                raise
            return result
        finally:
            await greenlet_spawn(pooled.close)


def _nothing() -> None:
    """Queued behind a call whose caller went away: when it has run, so has that call."""


class SqliteTransactions:
    """``Database.run_sync`` for SQLite: the synchronous transaction in the driver's thread, one trip.

    The work runs on the async pool's own ``sqlite3`` connection (its pragmas set by db/engine.py), through a
    ``PreparedConnection``: each statement compiled once by SQLAlchemy's SQLite dialect, values and results through
    the column types' own processors, and any statement it cannot prepare run by a synchronous SQLAlchemy
    ``Connection`` over the same connection. sqlite3's implicit ``BEGIN`` before the first write is the async
    engine's behaviour too (a transaction that starts with a write holds the write lock from that statement).
    Commit or rollback happen in the thread; the pool's reset on return then finds no open transaction. The event
    loop is free meanwhile: the ``Waiter`` the work gets runs a coroutine there and waits for its answer (the
    store's, which never needs this connection)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._prepared = Prepared(engine.dialect)
        self._sync: Engine | None = None  # over ``_raw``; used only in the driver's thread
        self._raw: sqlite3.Connection | None = None

    async def run(self, work: SyncWork[T], time_limit: float | None, checked_out: Callable[[], None]) -> T:
        loop = asyncio.get_running_loop()
        abandoned = _Abandonment()

        def wait(awaitable: Awaitable[R]) -> R:
            answer: _Answer[R] = _Answer()
            if not abandoned.waiting_for(answer):
                raise _Abandoned  # the caller has gone: roll back at once
            loop.call_soon_threadsafe(answer.start, awaitable)
            return answer.result(time_limit)

        def _write_transaction(raw: sqlite3.Connection, work: SyncWork[T]) -> T:
            engine = self._engine_over(raw)
            conn = PreparedConnection(raw, self._prepared, engine.connect)
            try:
                result = work(conn, wait)
                if abandoned.is_set():
                    raise _Abandoned  # nobody would learn of the commit: roll back instead
                conn.commit()
                return result
            finally:
                conn.close()

        return await one_trip(self._engine, time_limit, checked_out, abandoned, _write_transaction, work)

    def _engine_over(self, raw: sqlite3.Connection) -> Engine:
        """The synchronous engine over ``raw`` (in the driver's thread, before the transaction's first statement),
        for the statements that are not prepared. It is made again only when the async pool has opened a new
        connection, and connected at once: its first connection runs the dialect's set-up, which ends with a
        rollback, harmless only while no transaction is open."""
        if self._sync is None or raw is not self._raw:
            borrowed = _Borrowed(raw)
            engine = create_engine(
                self._engine.url.set(drivername="sqlite+pysqlite"),
                creator=lambda: borrowed,
                poolclass=StaticPool,
                pool_reset_on_return=None,
            )
            engine.connect().close()
            self._sync, self._raw = engine, raw
        return self._sync


class _Abandoned(Exception):
    """Raised in the driver's thread to roll back the transaction of a caller that has gone."""


class _Borrowed:
    """The async pool's ``sqlite3`` connection lent to the synchronous engine: everything but ``close``."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def close(self) -> None:
        """The async pool owns the connection and closes it."""


class _Abandonment(threading.Event):
    """Set (on the loop) when the caller of a trip has gone; it also ends the thread's wait for an answer at once,
    so that a timeout is reported after the time limit, not after the store's answer as well."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._answer: _Answer[Any] | None = None

    def waiting_for(self, answer: _Answer[Any]) -> bool:
        """In the driver's thread: ``answer`` is the one awaited now; False if the caller has already gone."""
        with self._lock:
            if self.is_set():
                return False
            self._answer = answer
            return True

    def set(self) -> None:
        with self._lock:
            super().set()
            answer, self._answer = self._answer, None
        if answer is not None:
            answer.abandon()


class _Answer(Generic[R]):
    """An awaitable's outcome, awaited on the loop for the driver's thread. Like ``run_coroutine_threadsafe``, one
    turn of the loop fewer: the thread is woken at the end of the task's last step, not by a callback after it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: R | None = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None  # referenced: the loop keeps only weak references to tasks

    def start(self, awaitable: Awaitable[R]) -> None:
        """On the loop."""
        self._task = asyncio.get_running_loop().create_task(self._fetch(awaitable))

    async def _fetch(self, awaitable: Awaitable[R]) -> None:
        try:
            value = await awaitable
        except Exception as exc:
            self._settle(None, exc)
        except BaseException as exc:  # cancelled (the loop is closing): the thread learns it, the task ends so
            self._settle(None, exc)
            raise
        else:
            self._settle(value, None)

    def _settle(self, value: R | None, error: BaseException | None) -> None:
        """On the loop, as ``abandon``: the first outcome stays."""
        if not self._done.is_set():
            self._value, self._error = value, error
            self._done.set()

    def abandon(self) -> None:
        """On the loop: the thread stops waiting (and rolls back); the store's answer, when it comes, is dropped."""
        if not self._done.is_set():
            self._error = _Abandoned()
            self._done.set()

    def result(self, time_limit: float | None) -> R:
        """In the driver's thread: the outcome, once there (``TimeoutError`` past ``time_limit``)."""
        if not self._done.wait(time_limit):
            raise TimeoutError("the event loop did not answer in time")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set when there is no error


def _read_sizes(
    conn: sqlite3.Connection, prepared: PreparedStatement, parameters: dict[str, object], wanted: list[str]
) -> dict[Oid, int]:
    """Runs in the driver's thread: a sizes query (its oids the expanding parameter ``oids``) for ``wanted``, every
    IN chunk."""
    found: dict[Oid, int] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        sql, values = prepared.bind({**parameters, "oids": wanted[i : i + IN_CHUNK]})
        for oid, size in conn.execute(sql, values).fetchall():
            found[Oid(oid)] = int(size)
    return found


def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Runs in the driver's thread: ``work``, and nothing left open after it (reads begin no transaction in
    sqlite3's default mode; should one be open, it is rolled back, as the pool's reset would)."""
    try:
        return work(conn)
    finally:
        if conn.in_transaction:
            conn.rollback()


def write_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Runs in the driver's thread: ``work`` (writes) between ``BEGIN IMMEDIATE`` and a commit, durable when it
    returns (``synchronous=FULL``); rolled back on any error. IMMEDIATE takes the write lock at once, waiting through
    ``busy_timeout`` for another process's writer, so the transaction never fails to upgrade a read lock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return result
