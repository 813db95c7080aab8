"""The object index: which repository holds which object, and each object's size."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Delete, Insert, Update

from lfsd.core.auth import Identity, Permission
from lfsd.core.errors import InsufficientStorage, NotFound, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.ports import BlockingPresence
from lfsd.db.database import Database, SqlConnection, Waiter, hot_statement, utcnow
from lfsd.db.dialect import insert_ignore
from lfsd.db.sqlite_trip import SqliteHotPath, write_transaction
from lfsd.db.tables import grants, objects, repo_objects, repos
from lfsd.db.usage import Delta, UsageCounters, retry_deadlocks

_IN_CHUNK = 500  # bound the number of bind parameters per statement on every database
GROUP_LINKS = 32
"""At most this many links share one transaction (group commit). Beyond a few, a bigger group saves next to nothing
(measured with bench/link.py: 0.10-0.15 ms of CPU per link in groups of 8, one commit each), while everything else
grows with it: the transaction's statements, its store check, its hold on the write lock, and the number of callers
one failure or one time limit reaches. git-lfs ends at most eight uploads at once."""

Presence = Callable[[Collection[Oid]], Awaitable[set[Oid]]]
"""The store's answer to "which of these bodies do you hold?" (``ObjectStore.present``)."""

COLLECTED_WHILE_UPLOADING = "the object was collected while it was uploaded; upload it again"


def _chunks(oids: Iterable[Oid]) -> Iterator[list[str]]:
    batch: list[str] = []
    for oid in oids:
        batch.append(str(oid))
        if len(batch) == _IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


class SqlObjectIndex:
    def __init__(self, db: Database, usage: UsageCounters | None = None) -> None:
        self._db = db
        self.usage = usage or UsageCounters(db.dialect)  # counters and quotas, kept in each link's transaction
        self._pending: list[_Link] = []
        self._writer: asyncio.Task[None] | None = None
        # SQLite: the sizes queries in one trip to the driver's thread each (db/sqlite_trip.py, issue 17).
        self._hot = SqliteHotPath(db) if db.dialect == "sqlite" else None
        self._queries: dict[str, Select[tuple[str, int]]] = {}
        self._present: Presence | None = None
        self._present_now: BlockingPresence | None = None
        self._statements = _LinkStatements.build(db.dialect)

    def check_bodies_with(self, present: Presence, present_now: BlockingPresence | None = None) -> None:
        """Check the store, inside each link transaction, for the objects whose bytes a garbage collector may have
        taken: rows the link creates and rows the collector marked unreferenced (docs/operations.md, "Garbage
        collection"). Without it (tests of the index alone) every body is taken to be there.

        ``present_now``, the same answer as a blocking call (a local store's stat), is asked instead where the
        transaction runs on the driver's own thread (SQLite): there it costs a stat, where ``present`` costs two
        hand-offs to the event loop and one to a worker thread while the write lock is held (issue 17)."""
        self._present = present
        self._present_now = present_now if self._hot is not None else None

    async def touch(self, oids: Collection[Oid]) -> None:
        """An upload batch is about to hand out links for ``oids``: unreferenced rows among them stay out of the
        collector's reach for a grace period from now (their PUTs can only start within a link's lifetime).

        The marked rows are read first and written only when there are some (a batch of new objects has none): a
        plain read is one trip on SQLite and takes no lock anywhere, where an UPDATE is a write transaction even
        when it changes nothing. Reading first does not weaken the guarantee: the UPDATE keeps its own condition,
        and a row marked after the read is marked later than this batch, so its grace period starts after it."""
        if self._hot is not None:
            await self._touch_sqlite(oids)
            return
        marked: list[Oid] = []
        async with self._db.transaction() as conn:
            for chunk in _chunks(oids):
                marked += [Oid(row.oid) for row in await conn.execute(_MARKED, {"oids": chunk})]
        if not marked:
            return
        now = utcnow()
        async with self._db.transaction() as conn:
            for chunk in _chunks(marked):
                await conn.execute(_TOUCH, {"oids": chunk, "now": now})

    async def _touch_sqlite(self, oids: Collection[Oid]) -> None:
        """``touch`` in one trip to the driver's thread: the read, then (only for marked rows) the write."""
        assert self._hot is not None
        marked, touch = self._hot.prepared("marked", _MARKED), self._hot.prepared("touch", _TOUCH)
        wanted = [str(oid) for oid in oids]
        reads = [marked.bind({"oids": wanted[i : i + _IN_CHUNK]}) for i in range(0, len(wanted), _IN_CHUNK)]
        now = utcnow()

        def work(conn: sqlite3.Connection) -> None:
            found = [oid for sql, values in reads for (oid,) in conn.execute(sql, values).fetchall()]
            if found:
                writes = [
                    touch.bind({"now": now, "oids": found[i : i + _IN_CHUNK]}) for i in range(0, len(found), _IN_CHUNK)
                ]
                write_transaction(conn, lambda conn: [conn.execute(sql, values) for sql, values in writes])

        await self._hot.run(work)

    async def confirm(self, repo_id: int, oids: Collection[Oid], refresh_seconds: int) -> set[Oid]:
        """Stamp the repository's links of ``oids`` (``repo_objects.confirmed_at``); the ones it still holds.

        Links made or stamped in the last ``refresh_seconds`` are left as they are: `gc --unreachable` keeps them
        anyway (that is less than any grace period it takes), so naming recent objects again writes nothing. The
        others are stamped, then read again with their rows locked: a link the collector removes at the same
        moment is either stamped first (and kept: the collector reads the stamp with the row locked) or gone when
        stamped (and reported missing: the batch asks for an upload)."""
        wanted = sorted(str(oid) for oid in oids)
        now = utcnow()
        fresh = now - timedelta(seconds=refresh_seconds)
        if self._hot is not None:
            hot = self._hot
            read = hot.prepared("held_and_stale", _HELD_AND_STALE)
            writes = hot.prepared("confirm", _CONFIRM), hot.prepared("still_held", _STILL_HELD)

            def stamp(conn: sqlite3.Connection, stale: list[str]) -> set[str]:
                held: set[str] = set()
                for i in range(0, len(stale), _IN_CHUNK):
                    values = {"rid": repo_id, "oids": stale[i : i + _IN_CHUNK], "now": now}
                    conn.execute(*writes[0].bind(values))
                    held.update(oid for (oid,) in conn.execute(*writes[1].bind(values)).fetchall())
                return held

            def work(conn: sqlite3.Connection) -> set[str]:
                held: set[str] = set()
                stale: list[str] = []
                for i in range(0, len(wanted), _IN_CHUNK):
                    values = {"rid": repo_id, "oids": wanted[i : i + _IN_CHUNK], "fresh": fresh}
                    for oid, is_stale in conn.execute(*read.bind(values)).fetchall():
                        held.add(oid)
                        if is_stale:
                            stale.append(oid)
                if not stale:
                    return held
                return (held - set(stale)) | write_transaction(conn, lambda conn: stamp(conn, sorted(stale)))

            return {Oid(oid) for oid in await hot.run(work)}

        async def stamp_elsewhere() -> set[Oid]:
            held: set[str] = set()
            stale: list[str] = []
            async with self._db.transaction() as conn:
                for chunk in _chunks(Oid(oid) for oid in wanted):
                    for row in await conn.execute(_HELD_AND_STALE, {"rid": repo_id, "oids": chunk, "fresh": fresh}):
                        held.add(row.oid)
                        if row.stale:
                            stale.append(row.oid)
                still: set[str] = set()
                for chunk in _chunks(Oid(oid) for oid in sorted(stale)):
                    values = {"rid": repo_id, "oids": chunk, "now": now}
                    await conn.execute(_CONFIRM, values)
                    still.update(row.oid for row in await conn.execute(_STILL_HELD, values))
            return {Oid(oid) for oid in (held - set(stale)) | still}

        return await retry_deadlocks(stamp_elsewhere)

    async def leave_unreferenced(self, sizes: dict[Oid, int]) -> None:
        """Rows, held by no repository, for stored bytes whose link was refused: a collector's run one grace period
        from now removes them with their bytes (``LfsService._link_stored``). Rows that exist are left alone:
        insert-or-ignore, as the link's own insert.

        The rows are marked unreferenced from the start, so that a later link of the same oid checks the store
        before it trusts them (``_settle_rows``): whether the bytes are still there was not checked here (a
        refusal for a deleted repository comes before any check)."""
        rows = unreferenced_rows(sizes, utcnow())
        statement = self._statements.insert_objects
        await retry_deadlocks(lambda: self._db.run_sync(lambda conn, _wait: conn.execute(statement, rows)))

    async def held_sizes(self, repo_id: int, oids: Iterable[Oid]) -> dict[Oid, int]:
        return await self._sizes("held", {"repo_id": repo_id}, oids)

    async def readable_sizes(self, identity: Identity | None, oids: Iterable[Oid]) -> dict[Oid, int]:
        return await self._sizes(*_readable_shape(identity), oids)

    async def upload_sizes(
        self, repo_id: int, identity: Identity | None, oids: Collection[Oid]
    ) -> tuple[dict[Oid, int], dict[Oid, int]]:
        """``held_sizes``, then ``readable_sizes`` of the rest; on SQLite both in one driver trip (issue 17)."""
        if self._hot is None:
            held = await self.held_sizes(repo_id, oids)
            missing = [oid for oid in oids if oid not in held]
            return held, await self.readable_sizes(identity, missing) if missing else {}
        shape, parameters = _readable_shape(identity)
        held_query, readable_query = self._query("held"), self._query(shape)
        return await self._hot.sizes_then_rest(
            ("held", held_query, {"repo_id": repo_id}), (shape, readable_query, parameters), oids
        )

    def _query(self, shape: str) -> Select[tuple[str, int]]:
        query = self._queries.get(shape)
        if query is None:
            query = self._queries[shape] = _sizes_query(shape)
        return query

    async def _sizes(self, shape: str, parameters: dict[str, object], oids: Iterable[Oid]) -> dict[Oid, int]:
        """The sizes query of ``shape`` restricted to ``oids``, in chunks that keep bind parameters bounded. Each
        shape is built once (its values are bind parameters), and on SQLite run in one driver trip."""
        query = self._query(shape)
        if self._hot is not None:
            return await self._hot.sizes(shape, query, parameters, oids)
        found: dict[Oid, int] = {}
        async with self._db.transaction() as conn:
            for chunk in _chunks(oids):
                for row in await conn.execute(query, {**parameters, "oids": chunk}):
                    found[Oid(row.oid)] = int(row.size)
        return found

    async def link(self, repo_id: int, sizes: dict[Oid, int], uploader_id: int | None = None) -> None:
        """Record that ``repo_id`` holds these objects; returns once that is committed.

        Group commit: links asked for while a transaction runs are written together by the next one (one
        transaction, one log sync, a handful of driver round trips for up to ``GROUP_LINKS`` uploads ending at
        once), and each caller returns only after the transaction holding its rows has committed. Small uploads
        ending together, as git-lfs sends eight at a time, shared nothing before (issue 17). Nothing waits to
        gather a group: a link that finds no transaction running starts one at once.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Link(repo_id, sizes, done, uploader_id or None))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:GROUP_LINKS], self._pending[GROUP_LINKS:]
            try:
                missing = await self._link_rows(group)
            except (NotFound, InsufficientStorage):
                # A repository was deleted meanwhile, or is over its quota: only its own links fail, the others are
                # written alone.
                for one in group:
                    await self._settle(one, self._link_rows([one]))
            except Exception as exc:  # every caller learns what went wrong with its transaction
                for one in group:
                    _finish(one.done, exc)
            except BaseException:
                for one in group + self._pending:  # the loop is closing: nobody is left waiting for ever
                    one.done.cancel()
                raise
            else:
                for one in group:
                    _finish(one.done, _gone_error(one, missing))

    async def _settle(self, one: _Link, writing: Awaitable[set[str]]) -> None:
        try:
            missing = await writing
        except Exception as exc:
            _finish(one.done, exc)
        else:
            _finish(one.done, _gone_error(one, missing))

    async def _link_rows(self, group: list[_Link]) -> set[str]:
        return await retry_deadlocks(lambda: self._link_rows_once(group))

    async def _link_rows_once(self, group: list[_Link]) -> set[str]:
        now = utcnow()
        claim = f"link-{secrets.token_hex(8)}"
        try:
            # One transaction; on SQLite one trip to the driver's thread, whatever the number of statements.
            return await self._db.run_sync(lambda conn, wait: self._write_links(conn, wait, group, claim, now))
        except IntegrityError:
            # The only foreign key that can fail here: the repository was deleted while a link was in use.
            raise NotFound("repository not found") from None

    def _write_links(
        self, conn: SqlConnection, wait: Waiter, group: list[_Link], claim: str, now: datetime
    ) -> set[str]:
        """Write the group's rows in one transaction; the oids not linked because their bytes are gone.

        The usage rows of the repositories are locked first (quotas and counters, db/usage.py); the rows of the
        objects are inserted, the new ones carrying this transaction's claim; then every object row is locked (a
        collector's claim of the same row waits, or has already deleted it); rows that are new, marked unreferenced
        or gone are checked against the store while the lock holds; only then the links and counters are written.
        """
        sizes = {str(oid): size for one in group for oid, size in one.sizes.items()}
        object_rows = [
            {"oid": oid, "size": size, "created_at": now, "gc_claim": claim} for oid, size in sorted(sizes.items())
        ]
        holders = sorted({(one.repo_id, str(oid)) for one in group for oid in one.sizes})
        uploaders = {(one.repo_id, str(oid)): one.uploader_id for one in reversed(group) for oid in one.sizes}
        statements = self._statements
        counted = self.usage.lock(conn, {repo_id for repo_id, _ in holders})
        already = self.usage.held(conn, counted.keys(), {oid for _, oid in holders})
        conn.execute(statements.insert_objects, object_rows)
        missing = self._settle_rows(conn, wait, sizes, claim, now)
        link_rows = [
            {
                "repo_id": repo_id,
                "oid": oid,
                "created_at": now,
                "size": sizes[oid],
                "uploader_id": uploaders[repo_id, oid],
            }
            for repo_id, oid in holders
            if oid not in missing
        ]
        if link_rows:
            conn.execute(statements.insert_links, link_rows)
        deltas: dict[int, Delta] = {}
        for repo_id, oid in set(holders) - already:
            if oid not in missing:
                deltas.setdefault(repo_id, Delta()).add(sizes[oid])
        self.usage.apply(conn, counted, deltas, now)
        return missing

    def _settle_rows(
        self, conn: SqlConnection, wait: Waiter, sizes: dict[str, int], claim: str, now: datetime
    ) -> set[str]:
        statements = self._statements
        rows: list[Any] = []  # (oid, unlinked_at, gc_claim)
        listed = sorted(sizes)
        for start in range(0, len(listed), _IN_CHUNK):
            rows.extend(conn.execute(statements.lock_objects, {"oids": listed[start : start + _IN_CHUNK]}).all())
        new = {row.oid for row in rows if row.gc_claim == claim}
        marked = {row.oid for row in rows if row.unlinked_at is not None and row.gc_claim != claim}
        gone = sizes.keys() - {row.oid for row in rows}  # a collector deleted it between our insert and our lock
        unverified = new | marked | gone
        missing: set[str] = set()
        if unverified:
            present = self._bodies_present([Oid(oid) for oid in unverified], wait)
            missing = unverified - {str(oid) for oid in present}
        kept = sorted((new | marked) - missing)
        for start in range(0, len(kept), _IN_CHUNK):
            conn.execute(statements.clear_claims, {"oids": kept[start : start + _IN_CHUNK]})
        dropped = sorted(new & missing)
        for start in range(0, len(dropped), _IN_CHUNK):
            conn.execute(statements.drop_claimed, {"oids": dropped[start : start + _IN_CHUNK], "claim": claim})
        if again := sorted(gone - missing):
            rows_again = [{"oid": oid, "size": sizes[oid], "created_at": now, "gc_claim": None} for oid in again]
            conn.execute(statements.insert_objects, rows_again)
        return missing

    def _bodies_present(self, oids: list[Oid], wait: Waiter) -> Collection[Oid]:
        """Which of ``oids`` the store holds, asked from inside the link transaction (all of them without a check)."""
        if self._present_now is not None:
            return self._present_now(oids)
        if self._present is not None:
            return wait(self._present(oids))
        return oids


def unreferenced_rows(sizes: Mapping[Oid, int], now: datetime) -> list[dict[str, Any]]:
    """``objects`` rows for stored bytes no repository holds, marked unreferenced at ``now``: a collector's run one
    grace period later removes them, and a link of the same oid first checks that the bytes are there."""
    return [
        {"oid": str(oid), "size": size, "created_at": now, "gc_claim": None, "unlinked_at": now}
        for oid, size in sorted(sizes.items())
    ]


# The rows a garbage collector marked unreferenced, among the expanding ``oids``; and their touch (``touch``).
_MARKED = select(objects.c.oid).where(
    objects.c.oid.in_(bindparam("oids", expanding=True)), objects.c.unlinked_at.is_not(None)
)
_TOUCH = (
    update(objects)
    .where(objects.c.oid.in_(bindparam("oids", expanding=True)), objects.c.unlinked_at.is_not(None))
    .values(touched_at=bindparam("now"))
)


# An upload batch found the repository holding these objects (``confirm``): which it still holds and which need a
# stamp (one plain read), the stamp, then what is still there.
_HELD_OIDS = (repo_objects.c.repo_id == bindparam("rid"), repo_objects.c.oid.in_(bindparam("oids", expanding=True)))
_FRESH = bindparam("fresh", type_=repo_objects.c.created_at.type)
_HELD_AND_STALE = select(
    repo_objects.c.oid,
    and_(
        repo_objects.c.created_at < _FRESH,
        or_(repo_objects.c.confirmed_at.is_(None), repo_objects.c.confirmed_at < _FRESH),
    ).label("stale"),
).where(*_HELD_OIDS)
_CONFIRM = update(repo_objects).where(*_HELD_OIDS).values(confirmed_at=bindparam("now"))
# A locking read: on MariaDB a plain one would see the transaction's first snapshot (REPEATABLE READ), so a link
# removed after the first chunk's read would still show in the next chunk's.
_STILL_HELD = select(repo_objects.c.oid).where(*_HELD_OIDS).with_for_update(read=True)


def _readable_shape(identity: Identity | None) -> tuple[str, dict[str, object]]:
    """The sizes query that finds what ``identity`` may read, and its parameters."""
    if identity is None:
        return "public", {}
    if identity.repo_scope is not None:
        # A credential for one repository reads that one only (effective_permission).
        if not identity.is_admin and identity.scope_grant < Permission.READ:
            return "scope_granted", {"scope": str(identity.repo_scope), "user_id": identity.user_id}
        return "scope", {"scope": str(identity.repo_scope)}
    if not identity.is_admin:
        return "granted", {"user_id": identity.user_id}
    return "admin", {}


@dataclass(frozen=True, slots=True)
class _LinkStatements:
    """The link transaction's statements, built once (their values are bind parameters)."""

    insert_objects: Insert
    insert_links: Insert
    lock_objects: Select[tuple[str, datetime | None, str | None]]
    clear_claims: Update
    drop_claimed: Delete

    @classmethod
    def build(cls, dialect: str) -> _LinkStatements:
        oids = objects.c.oid.in_(bindparam("oids", expanding=True))
        lock_objects = select(objects.c.oid, objects.c.unlinked_at, objects.c.gc_claim).where(oids).with_for_update()
        return cls(
            insert_objects=hot_statement(insert_ignore(objects, dialect)),
            insert_links=hot_statement(insert_ignore(repo_objects, dialect)),
            lock_objects=hot_statement(lock_objects),
            clear_claims=hot_statement(
                update(objects).where(oids).values(gc_claim=None, unlinked_at=None, touched_at=None)
            ),
            drop_claimed=hot_statement(objects.delete().where(oids, objects.c.gc_claim == bindparam("claim"))),
        )


def _sizes_query(shape: str) -> Select[tuple[str, int]]:
    """Objects' oid and size: held by one repository (``held``), or readable by a caller of ``shape``; the oids are
    the expanding parameter ``oids``, the other values parameters too."""
    query = select(objects.c.oid, objects.c.size).join(repo_objects, repo_objects.c.oid == objects.c.oid)
    if shape == "held":
        query = query.where(repo_objects.c.repo_id == bindparam("repo_id"))
    else:
        query = query.join(repos, repos.c.id == repo_objects.c.repo_id).distinct()
        if shape == "public":
            query = query.where(repos.c.is_public.is_(True))
        if shape in ("scope", "scope_granted"):
            query = query.where(repos.c.path == bindparam("scope"))
        if shape in ("granted", "scope_granted"):
            query = query.outerjoin(
                grants, (grants.c.repo_id == repos.c.id) & (grants.c.user_id == bindparam("user_id"))
            ).where(or_(repos.c.is_public.is_(True), grants.c.permission >= int(Permission.READ)))
        if shape not in ("public", "scope", "scope_granted", "granted", "admin"):
            raise ValueError(f"unknown sizes query {shape!r}")
    return query.where(objects.c.oid.in_(bindparam("oids", expanding=True)))


@dataclass(frozen=True, slots=True)
class _Link:
    repo_id: int
    sizes: dict[Oid, int]
    done: asyncio.Future[None]
    uploader_id: int | None = None


def _finish(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return  # its caller was cancelled (the client went away); the rows are written all the same
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _gone_error(one: _Link, missing: set[str]) -> Exception | None:
    if any(str(oid) in missing for oid in one.sizes):
        return ServiceUnavailable(COLLECTED_WHILE_UPLOADING)
    return None
