"""Usage counters and quotas, kept in the transaction of every link and unlink (never by a scan).

The locking order, the same for every writer so that none waits for another in a cycle: the ``repo_usage`` rows of
the repositories concerned, in id order (taken with an upsert, which locks the row it finds or inserts), then the
``owner_usage`` rows, in name order. Holding a repository's usage row, a writer reads which of its objects the
repository already holds and changes links and counters knowing no other writer changes them meanwhile. Counters
move only by ``SET bytes = bytes + :n`` in SQL, and a link that would take a repository or its owner past a quota
is refused by the same conditional ``UPDATE`` that would count it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Row, Select, bindparam, func, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter

from lfsd.core.errors import NotFound, ServiceUnavailable
from lfsd.core.repo import RepoPath
from lfsd.core.usage import Usage, UsageDay, check_fits, over_quota
from lfsd.db.aio import AsyncConnection
from lfsd.db.database import Database, SqlConnection, as_utc, hot_statement
from lfsd.db.dialect import insert_ignore
from lfsd.db.sqlite_trip import SqliteHotPath
from lfsd.db.tables import objects, owner_usage, repo_objects, repo_usage, repos, usage_days

_CHUNK = 500
_DEADLOCK_ATTEMPTS = 5
T = TypeVar("T")


def is_deadlock(exc: BaseException) -> bool:
    """A transaction the database chose as a deadlock victim (rolled back whole: safe to run again)."""
    cause = exc.__cause__ if isinstance(exc, ServiceUnavailable) else exc
    if not isinstance(cause, DBAPIError) or cause.orig is None:
        return False
    orig = cause.orig
    code = getattr(orig, "args", (None,))[0] if getattr(orig, "args", None) else None
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return code in (1213, 40001) or sqlstate in ("40P01", "40001")


async def retry_deadlocks(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` (one whole transaction) again when it was a deadlock victim. InnoDB takes gap locks for the
    inserts of concurrent links of the same new objects, and may pick a victim among them; the victim's
    transaction was rolled back whole, counters included, so running it again is exact."""
    for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
        try:
            return await work()
        except ServiceUnavailable as exc:
            if attempt == _DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                raise
            await asyncio.sleep(0.005 * attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Counted:
    """A repository's usage row as locked: its owner, counters and own quota."""

    repo_id: int
    path: str
    objects: int
    bytes: int
    quota_bytes: int | None

    @property
    def owner(self) -> str:
        return self.path.split("/", 1)[0]


@dataclass(slots=True)
class Delta:
    objects: int = 0
    bytes: int = 0

    def add(self, size: int, sign: int = 1) -> None:
        self.objects += sign
        self.bytes += sign * size


class UsageCounters:
    """The counter side of links and unlinks, run on the caller's connection, inside its transaction.

    Written once, synchronously, over a SQLAlchemy ``Connection``: the link runs it through ``Database.run_sync``
    (on SQLite in one trip to the driver's thread), other callers from an ``AsyncConnection`` with
    ``await conn.run_sync(usage.lock, ids)``. The hot statements are built once, their values bind parameters."""

    def __init__(self, dialect: str, default_quota: int | None = None) -> None:
        self._dialect = dialect
        self.default_quota = default_quota or None
        ids: BindParameter[Any] = bindparam("ids", expanding=True)
        self._locked = hot_statement(
            select(repo_usage.c.repo_id, repo_usage.c.objects, repo_usage.c.bytes, repo_usage.c.quota_bytes)
            .where(repo_usage.c.repo_id.in_(ids))
            .order_by(repo_usage.c.repo_id)
            .with_for_update()
        )
        self._insert_usage = hot_statement(insert_ignore(repo_usage, dialect))
        self._paths = hot_statement(select(repos.c.id, repos.c.path).where(repos.c.id.in_(ids)))
        self._counted_with_paths = hot_statement(
            select(
                repo_usage.c.repo_id, repo_usage.c.objects, repo_usage.c.bytes, repo_usage.c.quota_bytes, repos.c.path
            )
            .join(repos, repos.c.id == repo_usage.c.repo_id)
            .where(repo_usage.c.repo_id.in_(ids))
        )
        self._held = hot_statement(
            select(repo_objects.c.repo_id, repo_objects.c.oid).where(
                repo_objects.c.repo_id.in_(ids), repo_objects.c.oid.in_(bindparam("oids", expanding=True))
            )
        )
        self._upsert_day = hot_statement(_upsert_day(dialect))
        self._insert_owner = hot_statement(insert_ignore(owner_usage, dialect))
        self._owner_row = hot_statement(
            select(owner_usage.c.bytes, owner_usage.c.quota_bytes).where(owner_usage.c.owner == bindparam("owner_name"))
        )
        self._repo_updates: dict[tuple[bool, bool], Update] = {}
        self._owner_updates: dict[bool, Update] = {}
        self._sized = hot_statement(
            select(objects.c.size)
            .join(repo_objects, repo_objects.c.oid == objects.c.oid)
            .where(
                repo_objects.c.repo_id == bindparam("rid"), repo_objects.c.oid.in_(bindparam("oids", expanding=True))
            )
            # A locking read: it sees the latest committed links, as the DELETE does, whenever the transaction's
            # snapshot was taken (MySQL's REPEATABLE READ would otherwise count from an older one).
            .with_for_update(of=repo_objects if dialect == "postgresql" else None)
        )
        self._unlinked = hot_statement(
            repo_objects.delete().where(
                repo_objects.c.repo_id == bindparam("rid"), repo_objects.c.oid.in_(bindparam("oids", expanding=True))
            )
        )

    def lock(self, conn: SqlConnection, repo_ids: Iterable[int]) -> dict[int, Counted]:
        """Lock the usage rows of ``repo_ids`` (creating missing ones); raise ``NotFound`` if a repository is gone.

        A link calls it first in its transaction, so that the plain reads after it (``held``) see every link
        committed before the lock was granted (MySQL's REPEATABLE READ takes its snapshot at the first plain read).

        A missing row is inserted first, then locked: on MySQL/MariaDB a ``SELECT … FOR UPDATE`` of a missing row
        takes a gap lock that two writers can both hold and then deadlock inserting (a rare victim, run again by
        ``retry_deadlocks``). SQLite always starts with the insert, so the transaction holds the write lock from its
        first statement (a read first could not be upgraded once another process has written). The foreign key
        makes the insert fail for a deleted repository."""
        ids = sorted(set(repo_ids))
        if not ids:
            return {}
        if self._dialect == "sqlite":
            # No row locks: the insert takes the database's write lock, and one read has counters and paths.
            self._insert_rows(conn, ids)
            rows = {row.repo_id: row for row in conn.execute(self._counted_with_paths, {"ids": ids})}
            paths = {repo_id: row.path for repo_id, row in rows.items()}
        else:
            rows = {row.repo_id: row for row in conn.execute(self._locked, {"ids": ids})}
            if set(rows) != set(ids):
                self._insert_rows(conn, ids)
                rows = {row.repo_id: row for row in conn.execute(self._locked, {"ids": ids})}
            paths = {row.id: row.path for row in conn.execute(self._paths, {"ids": ids})}
        if set(paths) != set(ids) or set(rows) != set(ids):
            raise NotFound("repository not found")
        return {i: Counted(i, paths[i], int(rows[i].objects), int(rows[i].bytes), rows[i].quota_bytes) for i in ids}

    def _insert_rows(self, conn: SqlConnection, ids: list[int]) -> None:
        try:
            conn.execute(self._insert_usage, [{"repo_id": i} for i in ids])
        except IntegrityError:
            raise NotFound("repository not found") from None

    def held(self, conn: SqlConnection, repo_ids: Collection[int], oids: Collection[str]) -> set[tuple[int, str]]:
        """Which (repository, oid) pairs exist; exact while the repositories' usage rows are locked."""
        found: set[tuple[int, str]] = set()
        listed = sorted(oids)
        ids = sorted(repo_ids)
        for start in range(0, len(listed), _CHUNK):
            rows = conn.execute(self._held, {"ids": ids, "oids": listed[start : start + _CHUNK]})
            found.update((row.repo_id, row.oid) for row in rows)
        return found

    def apply(
        self, conn: SqlConnection, counted: Mapping[int, Counted], deltas: Mapping[int, Delta], now: datetime
    ) -> None:
        """Add ``deltas`` to the repositories' and their owners' counters and today's history; raise the 507
        refusal (rolling the transaction back) when growth would pass a quota."""
        owners: dict[str, Delta] = {}
        for repo_id in sorted(deltas):
            delta = deltas[repo_id]
            if delta.objects == 0 and delta.bytes == 0:
                continue
            repo = counted[repo_id]
            self._add_repo(conn, repo, delta, now)
            total = owners.setdefault(repo.owner, Delta())
            total.objects += delta.objects
            total.bytes += delta.bytes
        for owner, delta in sorted(owners.items()):
            self._add_owner(conn, owner, delta)

    def _repo_update(self, pushed: bool, growing: bool) -> Update:
        """``repo_usage`` += the delta (``pushed``: stamping the push; ``growing``: only within the quota)."""
        statement = self._repo_updates.get((pushed, growing))
        if statement is None:
            values: dict[str, object] = {
                "objects": repo_usage.c.objects + bindparam("add_objects"),
                "bytes": repo_usage.c.bytes + bindparam("add_bytes"),
            }
            if pushed:
                values["last_push_at"] = bindparam("pushed_at", type_=repo_usage.c.last_push_at.type)
            statement = update(repo_usage).where(repo_usage.c.repo_id == bindparam("rid")).values(values)
            if growing:
                quota = func.coalesce(repo_usage.c.quota_bytes, bindparam("default_quota"))
                statement = statement.where(or_(quota <= 0, repo_usage.c.bytes + bindparam("add_bytes") <= quota))
            self._repo_updates[pushed, growing] = statement = hot_statement(statement)
        return statement

    def _owner_update(self, growing: bool) -> Update:
        statement = self._owner_updates.get(growing)
        if statement is None:
            statement = (
                update(owner_usage)
                .where(owner_usage.c.owner == bindparam("owner_name"))
                .values(
                    objects=owner_usage.c.objects + bindparam("add_objects"),
                    bytes=owner_usage.c.bytes + bindparam("add_bytes"),
                )
            )
            if growing:
                statement = statement.where(
                    or_(
                        owner_usage.c.quota_bytes.is_(None),
                        owner_usage.c.bytes + bindparam("add_bytes") <= owner_usage.c.quota_bytes,
                    )
                )
            self._owner_updates[growing] = statement = hot_statement(statement)
        return statement

    def _add_repo(self, conn: SqlConnection, repo: Counted, delta: Delta, now: datetime) -> None:
        statement = self._repo_update(delta.objects > 0, delta.bytes > 0)
        values: dict[str, object] = {"rid": repo.repo_id, "add_objects": delta.objects, "add_bytes": delta.bytes}
        if delta.objects > 0:
            values["pushed_at"] = now
        if delta.bytes > 0:
            values["default_quota"] = self.default_quota or 0
        if conn.execute(statement, values).rowcount == 0:
            limit = repo.quota_bytes or self.default_quota or 0
            raise over_quota(f"repository {repo.path}", repo.bytes, limit, delta.bytes)
        # The day's figures: the counters as they now are (exact, the row is locked), in one upsert.
        day = {"repo_id": repo.repo_id, "day": now.date(), "objects": repo.objects + delta.objects}
        conn.execute(self._upsert_day, {**day, "bytes": repo.bytes + delta.bytes})

    def _add_owner(self, conn: SqlConnection, owner: str, delta: Delta) -> None:
        if delta.objects == 0 and delta.bytes == 0:
            return
        statement = self._owner_update(delta.bytes > 0)
        values = {"owner_name": owner, "add_objects": delta.objects, "add_bytes": delta.bytes}
        if conn.execute(statement, values).rowcount == 0:  # no row yet (then counted on it), or over the quota
            conn.execute(self._insert_owner, {"owner": owner})
            if conn.execute(statement, values).rowcount == 1:
                return
            row = conn.execute(self._owner_row, {"owner_name": owner}).one()
            raise over_quota(f"owner {owner}", int(row.bytes), int(row.quota_bytes), delta.bytes)

    def unlink(self, conn: SqlConnection, repo: Counted, oids: Collection[str], now: datetime) -> int:
        """Remove ``oids`` from the locked repository, counters with them; the number of links removed."""
        delta = Delta()
        listed = sorted(oids)
        for start in range(0, len(listed), _CHUNK):
            chunk = {"rid": repo.repo_id, "oids": listed[start : start + _CHUNK]}
            for row in conn.execute(self._sized, chunk):
                delta.add(int(row.size), -1)
            conn.execute(self._unlinked, chunk)
        self.apply(conn, {repo.repo_id: repo}, {repo.repo_id: delta}, now)
        return -delta.objects

    def created(self, conn: SqlConnection, repo_id: int, owner: str) -> None:
        """With a new repository: its usage row and its owner's, so that its first link only updates them."""
        conn.execute(repo_usage.insert().values(repo_id=repo_id))
        conn.execute(self._insert_owner, {"owner": owner})

    def forget_repo(self, conn: SqlConnection, repo_id: int) -> None:
        """Before a repository is deleted: its counters leave its owner's (its own rows go by cascade)."""
        counted = self.lock(conn, [repo_id])
        repo = counted[repo_id]
        self._add_owner(conn, repo.owner, Delta(-repo.objects, -repo.bytes))

    def move_owner(self, conn: SqlConnection, repo_id: int, new_path: str) -> None:
        """Before a rename: the counters move to the new owner when it differs (not refused by its quota)."""
        repo = self.lock(conn, [repo_id])[repo_id]
        new_owner = new_path.split("/", 1)[0]
        if new_owner == repo.owner:
            return
        for owner, sign in sorted([(repo.owner, -1), (new_owner, 1)]):
            conn.execute(self._insert_owner, {"owner": owner})
            values = {"owner_name": owner, "add_objects": sign * repo.objects, "add_bytes": sign * repo.bytes}
            conn.execute(self._owner_update(growing=False), values)


class SqlUsageStore:
    """Reads and quota changes for the use cases of ``core/usage.py``, and the batch-time quota check."""

    def __init__(self, db: Database, default_quota: int | None = None) -> None:
        self._db = db
        self._default = default_quota or None
        self._hot = SqliteHotPath(db) if db.dialect == "sqlite" else None  # check_upload in one trip (issue 17)

    def _repo_usage(self, row: Row[Any]) -> Usage:
        own = row.quota_bytes
        return Usage(
            target=str(row.path),
            objects=int(row.objects or 0),
            bytes=int(row.bytes or 0),
            last_push=as_utc(row.last_push_at),
            quota_bytes=own if own is not None else self._default,
            own_quota=own is not None,
        )

    def _repo_query(self) -> Select[tuple[int, str, int, int, datetime, int]]:
        return (
            select(
                repos.c.id,
                repos.c.path,
                repo_usage.c.objects,
                repo_usage.c.bytes,
                repo_usage.c.last_push_at,
                repo_usage.c.quota_bytes,
            )
            .select_from(repos)
            .outerjoin(repo_usage, repo_usage.c.repo_id == repos.c.id)
            .order_by(repos.c.path)
        )

    async def repo_usage(self, path: RepoPath) -> Usage | None:
        async with self._db.transaction() as conn:
            row = (await conn.execute(self._repo_query().where(repos.c.path == str(path)))).first()
        return None if row is None else self._repo_usage(row)

    async def all_repo_usage(self) -> list[Usage]:
        async with self._db.transaction() as conn:
            rows = (await conn.execute(self._repo_query())).all()
        return [self._repo_usage(row) for row in rows]

    async def owner_usage(self, owner: str) -> Usage:
        query = select(owner_usage.c.objects, owner_usage.c.bytes, owner_usage.c.quota_bytes).where(
            owner_usage.c.owner == owner
        )
        last = (
            select(func.max(repo_usage.c.last_push_at))
            .join(repos, repos.c.id == repo_usage.c.repo_id)
            .where(repos.c.path.like(_like_prefix(owner), escape="\\"))
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
            last_push = (await conn.execute(last)).scalar_one_or_none()
        if row is None:
            return Usage(owner, 0, 0, as_utc(last_push), None, False)
        return Usage(
            owner, int(row.objects), int(row.bytes), as_utc(last_push), row.quota_bytes, row.quota_bytes is not None
        )

    async def history(self, path: RepoPath, since: date) -> list[UsageDay] | None:
        async with self._db.transaction() as conn:
            repo_id = (await conn.execute(select(repos.c.id).where(repos.c.path == str(path)))).scalar_one_or_none()
            if repo_id is None:
                return None
            mine = usage_days.c.repo_id == repo_id
            before = (
                select(usage_days.c.day, usage_days.c.objects, usage_days.c.bytes)
                .where(mine, usage_days.c.day < since)
                .order_by(usage_days.c.day.desc())
                .limit(1)
            )
            within = (
                select(usage_days.c.day, usage_days.c.objects, usage_days.c.bytes)
                .where(mine, usage_days.c.day >= since)
                .order_by(usage_days.c.day)
            )
            rows = list(await conn.execute(before)) + list(await conn.execute(within))
        return [UsageDay(_day(row.day), int(row.objects), int(row.bytes)) for row in rows]

    async def set_repo_quota(self, path: RepoPath, quota_bytes: int | None) -> bool:
        async with self._db.transaction() as conn:
            repo_id = (await conn.execute(select(repos.c.id).where(repos.c.path == str(path)))).scalar_one_or_none()
            if repo_id is None:
                return False
            await conn.execute(insert_ignore(repo_usage, self._db.dialect), {"repo_id": repo_id})
            await conn.execute(
                update(repo_usage).where(repo_usage.c.repo_id == repo_id).values(quota_bytes=quota_bytes)
            )
        return True

    async def set_owner_quota(self, owner: str, quota_bytes: int | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(insert_ignore(owner_usage, self._db.dialect), {"owner": owner})
            await conn.execute(update(owner_usage).where(owner_usage.c.owner == owner).values(quota_bytes=quota_bytes))

    async def totals(self) -> tuple[int, int]:
        query = select(func.coalesce(func.sum(repo_usage.c.objects), 0), func.coalesce(func.sum(repo_usage.c.bytes), 0))
        async with self._db.transaction() as conn:
            objects_, bytes_ = (await conn.execute(query)).one()
        return int(objects_), int(bytes_)

    async def check_upload(self, repo_id: int, adding: int) -> None:
        """At batch time, before any byte is sent: refuse (507) growth past the repository's or owner's quota.

        Advisory against races (two batches may both fit alone): the link re-checks in its own transaction."""
        if adding <= 0:
            return
        if self._hot is not None:  # SQLite: both reads in one trip to the driver's thread (issue 17)
            found = await self._hot.run(self._sqlite_quota_reads(repo_id))
        else:
            async with self._db.transaction() as conn:
                found = await _quota_reads(conn, repo_id)
        if found is None:
            return  # deleted meanwhile: the link will say so
        (path, repo_bytes, repo_quota), owner_row = found
        owner = path.split("/", 1)[0]
        quota = repo_quota if repo_quota is not None else self._default
        check_fits(Usage(f"repository {path}", 0, int(repo_bytes or 0), None, quota, False), adding)
        if owner_row is not None:
            owner_bytes, owner_quota = owner_row
            check_fits(Usage(f"owner {owner}", 0, int(owner_bytes), None, owner_quota, True), adding)

    def _sqlite_quota_reads(self, repo_id: int) -> Callable[[sqlite3.Connection], _QuotaRows | None]:
        assert self._hot is not None
        repo_sql, repo_values = self._hot.prepared("quota_repo", _QUOTA_REPO).bind({"repo_id": repo_id})
        owner_read = self._hot.prepared("quota_owner", _QUOTA_OWNER)

        def read(conn: sqlite3.Connection) -> _QuotaRows | None:
            row = conn.execute(repo_sql, repo_values).fetchone()
            if row is None:
                return None
            sql, values = owner_read.bind({"owner": str(row[0]).split("/", 1)[0]})
            return (str(row[0]), row[1], row[2]), conn.execute(sql, values).fetchone()

        return read


# The batch-time quota check's reads (``SqlUsageStore.check_upload``), built once: a repository's path, bytes and own
# quota; then its owner's bytes and quota.
_QUOTA_REPO = (
    select(repos.c.path, repo_usage.c.bytes, repo_usage.c.quota_bytes)
    .select_from(repos)
    .outerjoin(repo_usage, repo_usage.c.repo_id == repos.c.id)
    .where(repos.c.id == bindparam("repo_id"))
)
_QUOTA_OWNER = select(owner_usage.c.bytes, owner_usage.c.quota_bytes).where(owner_usage.c.owner == bindparam("owner"))
_QuotaRows = tuple[tuple[str, int | None, int | None], tuple[int, int | None] | None]


async def _quota_reads(conn: AsyncConnection, repo_id: int) -> _QuotaRows | None:
    row = (await conn.execute(_QUOTA_REPO, {"repo_id": repo_id})).first()
    if row is None:
        return None
    owner = (await conn.execute(_QUOTA_OWNER, {"owner": str(row.path).split("/", 1)[0]})).first()
    return (str(row.path), row.bytes, row.quota_bytes), None if owner is None else (owner.bytes, owner.quota_bytes)


def _upsert_day(dialect: str) -> Insert:
    """Today's history row of a repository, inserted or overwritten."""
    # Each dialect's module only for its database (lfsd.db.dialect: the others cost 3 MiB resident, issue 17).
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(usage_days)
        return statement.on_duplicate_key_update(objects=statement.inserted.objects, bytes=statement.inserted.bytes)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        upsert: sqlite.Insert | postgresql.Insert = sqlite.insert(usage_days)
    else:
        from sqlalchemy.dialects import postgresql

        upsert = postgresql.insert(usage_days)
    return upsert.on_conflict_do_update(
        index_elements=[usage_days.c.repo_id, usage_days.c.day],
        set_={"objects": upsert.excluded.objects, "bytes": upsert.excluded.bytes},
    )


def _like_prefix(owner: str) -> str:
    escaped = owner.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def _day(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value
