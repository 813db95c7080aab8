"""SQLite statements compiled once and run as plain ``sqlite3`` calls, inside ``Database.run_sync`` (issue 17).

SQLAlchemy's synchronous execution costs 15 to 27 µs of CPU per statement on this machine (its execution context,
result objects and events) against 3 µs for the ``sqlite3`` call itself. A transaction's hot statements, built once
and kept (``database.hot_statement``), are compiled once by SQLAlchemy's SQLite dialect here and then cost one
``sqlite3`` call: the SQL is the statement's own (each expanding IN list spelled per length), values and rows go
through the column types' own processors, and driver errors are raised as SQLAlchemy raises them. Everything else
runs through a SQLAlchemy ``Connection`` on the same ``sqlite3`` connection, inside the same transaction. The hot
reads of ``SqliteHotPath`` (db/sqlite_trip.py) bind the same ``PreparedStatement``: one compiler for both.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

if TYPE_CHECKING:
    from lfsd.db.database import Rows

T = TypeVar("T")

HOT_OPTION: Final = "lfsd_hot"  # the execution option ``database.hot_statement`` sets


class PreparedConnection:
    """A ``SqlConnection`` on the driver's ``sqlite3`` connection (in its thread): a prepared statement costs one
    ``sqlite3`` call (measured: 3 µs against 15 to 27 µs through SQLAlchemy's execution context); the others go to a
    SQLAlchemy ``Connection`` made on first need. Driver errors are raised as SQLAlchemy raises them
    (``IntegrityError`` and the others), so that the rules and ``Database.driver_errors`` see one error tree."""

    def __init__(self, raw: sqlite3.Connection, prepared: Prepared, fallback: Callable[[], Connection]) -> None:
        self._raw = raw
        self._prepared = prepared
        self._make_fallback = fallback
        self._fallback: Connection | None = None

    def execute(self, statement: Executable, parameters: Any = None, /) -> Rows:
        many: list[dict[str, Any]] = parameters if isinstance(parameters, list) else [parameters or {}]
        prepared = self._prepared.get(statement, tuple(sorted(many[0])) if many else (), len(many) > 1)
        if prepared is not None:
            try:
                return prepared.run(self._raw, many)
            except _NotPrepared:  # raised before anything ran: values this statement's SQL does not fit
                pass
        return self.sqlalchemy().execute(statement, parameters)

    def sqlalchemy(self) -> Connection:
        """The SQLAlchemy ``Connection`` on the same ``sqlite3`` connection, inside the same transaction."""
        if self._fallback is None:
            self._fallback = self._make_fallback()
            self._fallback.begin()
        return self._fallback

    def commit(self) -> None:
        if self._fallback is not None:
            self._fallback.commit()
        else:
            _driver(self._raw.commit, "COMMIT")

    def close(self) -> None:
        """Nothing left open: an uncommitted transaction is rolled back."""
        if self._fallback is not None:
            self._fallback.close()
        if self._raw.in_transaction:
            _driver(self._raw.rollback, "ROLLBACK")


class Prepared:
    """Statements compiled once for SQLite, by statement object and the keys of its values (as SQLAlchemy's own
    compiled cache keys them): only those marked with ``database.hot_statement`` (built once and kept); others,
    and those this path does not run (Python-side defaults, RETURNING, empty IN lists), are ``None``."""

    _LIMIT: Final = 256  # statements kept; past it the cache starts again (the hot ones are few)

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[tuple[int, tuple[str, ...], bool], tuple[Executable, PreparedStatement | None]] = {}

    def get(self, statement: Executable, keys: tuple[str, ...], many: bool) -> PreparedStatement | None:
        key = (id(statement), keys, many)
        found = self._compiled.get(key)
        if found is not None and found[0] is statement:  # the statement is kept: its id is not reused meanwhile
            return found[1]
        if not statement.get_execution_options().get(HOT_OPTION):
            return None
        if len(self._compiled) >= self._LIMIT:
            self._compiled.clear()
        compiled = self._compiled[key] = (statement, PreparedStatement.compile(statement, self._dialect, keys, many))
        return compiled[1]


class PreparedStatement:
    """One compiled statement: SQL per length of each expanding IN list, positional values, result processing."""

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        self._pieces, self._expanding = _split_expanding(str(compiled), compiled)
        self._fixed = compiled.construct_params(_check=False) or {}  # values built into the statement
        # Per placeholder, in order: its parameter, its type's bind processor, whether it is an expanding IN list.
        self._binders = tuple(
            (name, compiled.binds[name].type._cached_bind_processor(dialect), name in self._expanding)
            for name in compiled.positiontup or ()
        )
        columns = getattr(compiled, "_result_columns", None) or []
        keys = [column.keyname for column in columns]
        row_type: Any = namedtuple("_Row", keys, rename=True) if keys else None  # attributes, as SQLAlchemy's rows
        self._row: Callable[[Iterable[Any]], Any] | None = row_type._make if keys else None
        self._results = [column.type._cached_result_processor(dialect, None) for column in columns]
        self._any_results = any(process is not None for process in self._results)
        self._sql: dict[tuple[int, ...], str] = {} if self._expanding else {(): self._pieces[0]}

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> PreparedStatement:
        """``statement`` prepared for ``bind`` (a hot read or a plain UPDATE: its values are all bind parameters);
        ``ValueError`` if this path cannot run it."""
        prepared = cls.compile(statement, dialect, (), False)
        if prepared is None:
            raise ValueError(f"this statement cannot be prepared for SQLite: {statement}")
        return prepared

    @classmethod
    def compile(
        cls, statement: Executable, dialect: Dialect, keys: tuple[str, ...], many: bool
    ) -> PreparedStatement | None:
        if not isinstance(statement, ClauseElement):
            return None
        compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
        if not isinstance(compiled, SQLCompiler):
            return None
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.effective_returning:
            return None  # Python-side defaults or RETURNING: SQLAlchemy's own execution handles them
        try:
            return cls(compiled, dialect)
        except _NotPrepared:
            return None

    def run(self, raw: sqlite3.Connection, many: list[dict[str, Any]]) -> _Rows:
        if len(many) > 1:
            statements = [self.bind(values) for values in many]
            sql = statements[0][0]
            if any(other != sql for other, _ in statements):  # expanding lists of different lengths
                raise _NotPrepared
            try:
                cursor = raw.executemany(sql, [bound for _, bound in statements])
            except sqlite3.Error as exc:
                raise _mapped(exc, sql) from exc
            return _Rows([], cursor.rowcount)
        sql, bound = self.bind(many[0])
        try:
            cursor = raw.execute(sql, bound)
            fetched = cursor.fetchall() if self._row is not None else []
        except sqlite3.Error as exc:
            raise _mapped(exc, sql) from exc
        make = self._row
        if make is None:
            return _Rows([], cursor.rowcount)
        if self._any_results:
            processors = self._results
            rows = [
                make(
                    [
                        value if process is None else process(value)
                        for process, value in zip(processors, row, strict=True)
                    ]
                )
                for row in fetched
            ]
        else:
            rows = [make(row) for row in fetched]
        return _Rows(rows, cursor.rowcount)

    def bind(self, values: dict[str, Any]) -> tuple[str, tuple[object, ...]]:
        """The SQL (each expanding IN list spelled for its length) and its positional values, through the types'
        bind processors; values the statement has built in need not be given."""
        fixed = self._fixed
        if self._expanding:
            lengths = tuple(len(values[name] if name in values else fixed[name]) for name in self._expanding)
        else:
            lengths = ()
        sql = self._sql.get(lengths)
        if sql is None:
            if 0 in lengths:
                raise _NotPrepared  # an empty IN list: SQLAlchemy spells it its own way
            lists = ["(" + ", ".join("?" * length) + ")" for length in lengths]
            sql = self._sql[lengths] = "".join(
                piece + (lists[i] if i < len(lists) else "") for i, piece in enumerate(self._pieces)
            )
        bound: list[object] = []
        for name, processor, expanding in self._binders:
            value = values[name] if name in values else fixed[name]
            if expanding:
                bound += value if processor is None else [processor(one) for one in value]
            else:
                bound.append(value if processor is None else processor(value))
        return sql, tuple(bound)


class _Rows:
    """A statement's rows, fetched whole (``Rows``)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> Sequence[Any]:
        return self._rows

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise NoResultFound("no row") if not self._rows else MultipleResultsFound("more than one row")
        return self._rows[0]


class _NotPrepared(Exception):
    """A statement (or these values) this path does not run."""


def _split_expanding(sql: str, compiled: SQLCompiler) -> tuple[list[str], tuple[str, ...]]:
    """The SQL around each expanding parameter's ``(__[POSTCOMPILE_name])`` token, and those names in order."""
    names = tuple(name for name in dict.fromkeys(compiled.positiontup or ()) if compiled.binds[name].expanding)
    if len(names) != sum(1 for name in (compiled.positiontup or ()) if name in names):
        raise _NotPrepared  # an expanding parameter used twice
    if ("POSTCOMPILE" in sql and not names) or compiled.literal_execute_params:
        raise _NotPrepared
    ordered = sorted(names, key=lambda name: sql.index(f"(__[POSTCOMPILE_{name}])"))
    if tuple(ordered) != tuple(name for name in (compiled.positiontup or ()) if name in names):
        raise _NotPrepared
    pieces: list[str] = []
    rest = sql
    for name in ordered:
        head, rest = rest.split(f"(__[POSTCOMPILE_{name}])", 1)
        pieces.append(head)
    pieces.append(rest)
    return pieces, tuple(ordered)


def _driver(call: Callable[[], T], sql: str) -> T:
    """A ``sqlite3`` call, its errors raised as SQLAlchemy raises them (``IntegrityError``, ``OperationalError``…)."""
    try:
        return call()
    except sqlite3.Error as exc:
        raise _mapped(exc, sql) from exc


def _mapped(exc: sqlite3.Error, sql: str) -> BaseException:
    return DBAPIError.instance(sql, None, exc, sqlite3.Error)
