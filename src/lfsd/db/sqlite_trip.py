"""SQLite's hot statements in one trip to the driver's thread per transaction (issue 17).

Through SQLAlchemy's aiosqlite adapter every statement is four trips between the event loop and aiosqlite's thread
(cursor, execute, fetch, close) and a commit one more; on this machine each trip costs tens of microseconds of CPU
(futex wake-ups and GIL hand-overs) whatever the statement: about 40 % of a batch's server CPU. Here the reads every
batch (and every transfer authorized by credentials) runs are plain ``sqlite3`` calls inside one function that
aiosqlite's thread runs as a whole, one trip. (The link transaction stays on SQLAlchemy: it now also holds the
usage counters and the garbage collector's claims, and asks the store in its middle.)

The connection is still checked out of the engine's pool (one connection per process for SQLite), so these
transactions queue with every other one exactly as before; the SQL is the SQLAlchemy statement's own, compiled once
for this dialect, and values go through the column types' own bind processors. Driver errors are mapped here the
way ``Database.transaction`` maps them. Only SQLite takes this path: the network databases' drivers make one
round trip per statement anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from sqlalchemy import Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from lfsd.core.errors import ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.db.database import Database

T = TypeVar("T")

SizesQuery = tuple[str, Select[tuple[str, int]], dict[str, object]]
"""A sizes query's shape (its cache key), the query (oids the expanding parameter ``oids``) and its parameters."""

IN_CHUNK: Final = 500  # bound the number of bind parameters per statement, as the SQLAlchemy path does


class SqliteHotPath:
    """The hot reads (the index's sizes queries, a repository with its grant), one trip each."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._selects: dict[str, PreparedSelect] = {}

    async def sizes(
        self, shape: str, query: Select[tuple[str, int]], parameters: dict[str, object], oids: Iterable[Oid]
    ) -> dict[Oid, int]:
        """``query`` (one per ``shape``, its oids the expanding parameter ``oids``) for ``oids``: every chunk of
        the IN list in the same trip."""
        wanted = [str(oid) for oid in oids]
        if not wanted:
            return {}
        prepared = self._selects.get(shape)
        if prepared is None:
            prepared = self._selects[shape] = PreparedSelect(query, self._db.engine.dialect, "oids")
        statements = [prepared.statement(parameters, wanted[i : i + IN_CHUNK]) for i in range(0, len(wanted), IN_CHUNK)]

        def read(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            rows: list[tuple[str, int]] = []
            for sql, values in statements:
                rows += conn.execute(sql, values).fetchall()
            return rows

        return {Oid(oid): int(size) for oid, size in await self._run(read)}

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
        prepared = self._selects.get(key)
        if prepared is None:
            prepared = self._selects[key] = PreparedSelect(query, self._db.engine.dialect, None)
        sql, values = prepared.statement(parameters, [])

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = conn.execute(sql, values).fetchall()
            return rows

        return await self._run(read)

    def prepared(self, key: str, query: Select[Any] | Update, expanding: str | None = "oids") -> PreparedSelect:
        """``query`` compiled once per ``key`` (its IN list the expanding parameter ``expanding``), for ``run``."""
        prepared = self._selects.get(key)
        if prepared is None:
            prepared = self._selects[key] = PreparedSelect(query, self._db.engine.dialect, expanding)
        return prepared

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one trip: reads, and writes only inside ``write_transaction`` (committed before it returns)."""
        return await self._run(work)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` (reads) in aiosqlite's thread; the pool's connection held meanwhile."""
        db = self._db
        try:
            async with asyncio.timeout(db.timeout_seconds):
                # The pool's connection itself, without SQLAlchemy's Connection around it (half the cost of a trip,
                # issue 17): checked out and in through the same pool, so the queueing is unchanged.
                raw = await db.engine.raw_connection()
                try:
                    driver = raw.driver_connection  # aiosqlite.Connection
                    # aiosqlite's own queue to its thread (``_execute``, what each of its public calls uses); the
                    # version is pinned in constraints.txt and tests/db/test_sqlite_trip.py fails if it changes.
                    running = asyncio.ensure_future(driver._execute(_transaction, driver._conn, work))  # type: ignore[union-attr]
                    try:
                        # The thread cannot be stopped: the connection goes back to the pool only once it is done.
                        result: T = await asyncio.shield(running)
                    except asyncio.CancelledError:
                        await asyncio.wait([running])
                        raise
                    return result
                finally:
                    await _check_in(raw)
        except TimeoutError as exc:
            db.log_failure(exc)
            raise ServiceUnavailable("the metadata database did not answer in time") from exc
        except (sqlite3.Error, OSError, ValueError) as exc:  # ValueError: aiosqlite's "Connection closed"
            db.log_failure(exc)
            raise ServiceUnavailable("the metadata database is unavailable") from exc


class PreparedSelect:
    """A SELECT compiled once for SQLite with one expanding IN parameter, whose placeholders are spelled per length
    (SQLAlchemy renders that list at execution; here each length's SQL is kept, at most ``IN_CHUNK`` of them).
    The other parameters are bound by name; values go through their types' bind processors."""

    def __init__(self, query: Select[Any] | Update, dialect: Dialect, expanding: str | None) -> None:
        compiled = query.compile(dialect=dialect)
        sql = str(compiled)
        if expanding is None:
            self._head, self._tail = sql, ""
        else:
            token = f"(__[POSTCOMPILE_{expanding}])"
            if sql.count(token) != 1:
                raise ValueError(f"the query has no single expanding parameter {expanding!r}")
            self._head, self._tail = sql.split(token)
        self._order = tuple(compiled.positiontup or ())
        self._expanding = expanding
        self._fixed = compiled.construct_params(_check=False)  # values built into the query (a permission level)
        self._processors = {
            name: processor
            for name in self._order
            if (processor := compiled.binds[name].type.bind_processor(dialect)) is not None
        }
        self._sql: dict[int, str] = {}

    def statement(self, parameters: dict[str, object], values: list[str]) -> tuple[str, tuple[object, ...]]:
        """The SQL and its positional values for ``values`` in the IN list and ``parameters`` for the others."""
        sql = self._sql.get(len(values))
        if sql is None:
            in_list = "(" + ", ".join("?" * len(values)) + ")" if self._expanding is not None else ""
            sql = self._sql[len(values)] = self._head + in_list + self._tail
        bound: list[object] = []
        for name in self._order:
            processor = self._processors.get(name)
            if name == self._expanding:
                bound += values if processor is None else [processor(value) for value in values]
                continue
            value = parameters[name] if name in parameters else self._fixed[name]
            bound.append(value if processor is None else processor(value))
        return sql, tuple(bound)


def _read_sizes(
    conn: sqlite3.Connection, prepared: PreparedSelect, parameters: dict[str, object], wanted: list[str]
) -> dict[Oid, int]:
    """Runs in the driver's thread: a sizes query for ``wanted``, every IN chunk."""
    found: dict[Oid, int] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        sql, values = prepared.statement(parameters, wanted[i : i + IN_CHUNK])
        for oid, size in conn.execute(sql, values).fetchall():
            found[Oid(oid)] = int(size)
    return found


async def _check_in(raw: PoolProxiedConnection) -> None:
    """Back to the pool. Its reset rolls back only an open transaction (db/engine.py), which ``_transaction`` never
    leaves; should one be open, the rollback goes through the adapter, which must run inside SQLAlchemy's greenlet."""
    if getattr(raw.driver_connection, "in_transaction", True) is False:
        raw.close()
    else:
        await greenlet_spawn(raw.close)


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
