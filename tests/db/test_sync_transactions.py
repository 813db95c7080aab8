"""``Database.run_sync``: a transaction written once as synchronous SQLAlchemy Core, run by SQLAlchemy's greenlet
adaption on MySQL/PostgreSQL and whole in the driver's thread on SQLite (one trip, hot statements prepared once).

The link transaction's own rules (counters, quotas, claims) are pinned by test_usage_counters.py, test_gc.py and
test_link_*.py on every database; this file pins the runner: errors, rollbacks, cancellation and timeouts."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from lfsd.config import Settings
from lfsd.core.errors import InsufficientStorage, NotFound, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import SqlConnection, Waiter, hot_statement
from lfsd.db.dialect import insert_ignore
from lfsd.db.metadata import Metadata
from lfsd.db.sqlite_prepared import PreparedConnection
from lfsd.db.tables import objects, owner_usage, repo_objects, repos
from lfsd.resources import open_metadata


def _oid(n: int) -> Oid:
    return Oid(hashlib.sha256(n.to_bytes(4, "big")).hexdigest())


@pytest.fixture
async def sqlite_meta(tmp_path: Path) -> AsyncIterator[Metadata]:
    opened = await open_metadata(Settings(data_dir=tmp_path / "data", fsync=False, database_timeout=1.0))
    assert opened.db.dialect == "sqlite"
    yield opened
    await opened.close()


async def _count(meta: Metadata, table: Any) -> int:
    async with meta.db.transaction() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_link_on_sqlite_is_one_trip_to_the_driver(sqlite_meta: Metadata, trips: list[str]) -> None:
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    asked: list[set[Oid]] = []

    async def present(oids: Collection[Oid]) -> set[Oid]:
        asked.append(set(oids))
        await asyncio.sleep(0)  # the loop runs while the driver's thread waits for the answer
        return set(oids)

    sqlite_meta.objects.check_bodies_with(present)
    trips.clear()
    await sqlite_meta.objects.link(repo.id, {_oid(1): 10, _oid(2): 20})
    assert trips == ["_write_transaction"]
    assert asked == [{_oid(1), _oid(2)}]
    assert await sqlite_meta.objects.held_sizes(repo.id, [_oid(1), _oid(2)]) == {_oid(1): 10, _oid(2): 20}
    usage = await sqlite_meta.usage.repo_usage(repo.path)
    assert usage is not None and (usage.objects, usage.bytes) == (2, 30)


async def test_a_blocking_store_check_runs_on_the_drivers_thread_on_sqlite_only(meta: Metadata) -> None:
    """SQLite's link transaction runs on the driver's thread, where a local store's stat can be asked directly; on
    the network databases it runs on the event loop's thread, which must not block: there the async check is used."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    loop_thread = threading.get_ident()
    asked: list[set[Oid]] = []
    asked_now: list[tuple[set[Oid], int]] = []

    async def present(oids: Collection[Oid]) -> set[Oid]:
        asked.append(set(oids))
        return set(oids) - {_oid(2)}

    def present_now(oids: Collection[Oid]) -> set[Oid]:
        asked_now.append((set(oids), threading.get_ident()))
        return set(oids) - {_oid(2)}

    meta.objects.check_bodies_with(present, present_now)
    await meta.objects.link(repo.id, {_oid(1): 10})
    # A body the store no longer holds is refused, whichever check found it, and nothing of it is written.
    with pytest.raises(ServiceUnavailable, match="collected while it was uploaded"):
        await meta.objects.link(repo.id, {_oid(2): 20})
    if meta.db.dialect == "sqlite":
        assert asked == []
        assert [oids for oids, _ in asked_now] == [{_oid(1)}, {_oid(2)}]
        assert all(thread != loop_thread for _, thread in asked_now)
    else:
        assert asked_now == []
        assert asked == [{_oid(1)}, {_oid(2)}]
    assert await meta.objects.held_sizes(repo.id, [_oid(1), _oid(2)]) == {_oid(1): 10}
    assert await _count(meta, objects) == 1
    usage = await meta.usage.repo_usage(repo.path)
    assert usage is not None and (usage.objects, usage.bytes) == (1, 10)


async def test_a_store_check_that_fails_writes_nothing(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)

    async def broken(oids: Collection[Oid]) -> set[Oid]:
        raise ServiceUnavailable("the store is down")

    meta.objects.check_bodies_with(broken)
    with pytest.raises(ServiceUnavailable, match="the store is down"):
        await meta.objects.link(repo.id, {_oid(1): 10})
    assert await _count(meta, objects) == 0
    assert await _count(meta, repo_objects) == 0
    usage = await meta.usage.repo_usage(repo.path)
    assert usage is not None and (usage.objects, usage.bytes) == (0, 0)

    async def present(oids: Collection[Oid]) -> set[Oid]:
        return set(oids)

    meta.objects.check_bodies_with(present)
    await meta.objects.link(repo.id, {_oid(1): 10})  # the connection is usable again, nothing left open
    assert await meta.objects.held_sizes(repo.id, [_oid(1)]) == {_oid(1): 10}


async def test_a_quota_refusal_rolls_the_whole_link_back(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    assert await meta.usage.set_repo_quota(repo.path, 100)
    await meta.objects.link(repo.id, {_oid(1): 60})
    with pytest.raises(InsufficientStorage):
        await meta.objects.link(repo.id, {_oid(2): 50})
    assert await meta.objects.held_sizes(repo.id, [_oid(1), _oid(2)]) == {_oid(1): 60}
    assert await _count(meta, objects) == 1  # the refused object's row went with the transaction
    usage = await meta.usage.repo_usage(repo.path)
    assert usage is not None and (usage.objects, usage.bytes) == (1, 60)


async def test_a_deleted_repository_is_not_found(meta: Metadata) -> None:
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await meta.repos.delete(repo)
    with pytest.raises(NotFound):
        await meta.objects.link(repo.id, {_oid(1): 10})
    assert await _count(meta, objects) == 0


async def test_integrity_errors_reach_the_caller_and_driver_errors_are_mapped(meta: Metadata) -> None:
    def orphan(conn: SqlConnection, _wait: Waiter) -> None:
        now = datetime.now(UTC)
        conn.execute(insert_ignore(objects, meta.db.dialect), [{"oid": str(_oid(1)), "size": 1, "created_at": now}])
        conn.execute(repo_objects.insert(), {"repo_id": 999, "oid": str(_oid(1)), "created_at": now, "size": 1})

    with pytest.raises(IntegrityError):  # the caller says which rule it broke (a deleted repository)
        await meta.db.run_sync(orphan)
    assert await _count(meta, objects) == 0  # rolled back whole

    def broken(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(ServiceUnavailable, match="metadata database") as raised:
        await meta.db.run_sync(broken)
    assert isinstance(raised.value.__cause__, DBAPIError)


async def test_the_waiter_runs_on_the_loop_and_its_errors_roll_back(meta: Metadata) -> None:
    loop = asyncio.get_running_loop()

    async def on_the_loop() -> bool:
        return asyncio.get_running_loop() is loop

    def asks(conn: SqlConnection, wait: Waiter) -> bool:
        conn.execute(insert_ignore(owner_usage, meta.db.dialect), {"owner": "acme"})
        return wait(on_the_loop())

    assert await meta.db.run_sync(asks) is True
    assert await _count(meta, owner_usage) == 1

    async def fails() -> None:
        raise LookupError("no answer")

    def asks_badly(conn: SqlConnection, wait: Waiter) -> None:
        conn.execute(insert_ignore(owner_usage, meta.db.dialect), {"owner": "other"})
        wait(fails())

    with pytest.raises(LookupError):
        await meta.db.run_sync(asks_badly)
    assert await _count(meta, owner_usage) == 1


async def test_a_cancelled_caller_rolls_the_sqlite_transaction_back(sqlite_meta: Metadata) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(insert_ignore(owner_usage, "sqlite"), {"owner": "acme"})
        started.set()
        release.wait(10)

    running = asyncio.ensure_future(sqlite_meta.db.run_sync(slow))
    assert await asyncio.to_thread(started.wait, 10)
    running.cancel()
    await asyncio.sleep(0.05)
    assert not running.done()  # the thread cannot be stopped: the caller waits for it, the connection with it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await _count(sqlite_meta, owner_usage) == 0  # nobody learnt of it: not committed
    await sqlite_meta.db.ping()


async def test_a_sqlite_transaction_past_its_time_is_unavailable_and_rolled_back(sqlite_meta: Metadata) -> None:
    def slow(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(insert_ignore(owner_usage, "sqlite"), {"owner": "acme"})
        threading.Event().wait(1.5)  # longer than the database timeout (1 s)

    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        await sqlite_meta.db.run_sync(slow)
    assert await _count(sqlite_meta, owner_usage) == 0


async def test_statements_not_prepared_share_the_sqlite_transaction(sqlite_meta: Metadata) -> None:
    """``repos.is_public`` has a Python-side default: that insert goes through SQLAlchemy's own execution even when
    marked hot, on the same connection and in the same transaction as the prepared ones."""
    now = datetime.now(UTC)
    owner, repo = hot_statement(insert_ignore(owner_usage, "sqlite")), hot_statement(repos.insert())

    def both(conn: SqlConnection, _wait: Waiter, fail: bool) -> None:
        conn.execute(owner, {"owner": "acme"})
        conn.execute(repo, {"path": "acme/game", "created_at": now})
        conn.execute(owner, {"owner": "other"})
        if fail:
            raise LookupError("after both")

    with pytest.raises(LookupError):
        await sqlite_meta.db.run_sync(lambda conn, wait: both(conn, wait, True))
    assert (await _count(sqlite_meta, owner_usage), await _count(sqlite_meta, repos)) == (0, 0)
    await sqlite_meta.db.run_sync(lambda conn, wait: both(conn, wait, False))
    assert (await _count(sqlite_meta, owner_usage), await _count(sqlite_meta, repos)) == (2, 1)
    found = await sqlite_meta.repos.find(RepoPath.parse("acme/game"))
    assert found is not None and found.is_public is False


async def test_prepared_statements_answer_as_sqlalchemy_does(sqlite_meta: Metadata) -> None:
    """Values and rows go through the column types' own processors: the same rows, types and counts."""
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await sqlite_meta.objects.link(repo.id, {_oid(n): n for n in range(1, 4)})
    query = hot_statement(
        select(objects.c.oid, objects.c.size, objects.c.created_at, objects.c.unlinked_at)
        .where(objects.c.oid.in_([str(_oid(n)) for n in range(1, 5)]))
        .order_by(objects.c.oid)
    )

    touch = hot_statement(objects.update().where(objects.c.size > bindparam("over")).values(touched_at=bindparam("at")))

    def both(conn: SqlConnection, _wait: Waiter) -> tuple[list[Any], list[Any], int]:
        assert isinstance(conn, PreparedConnection)
        prepared = [tuple(row) for row in conn.execute(query)]
        changed = conn.execute(touch, {"over": 1, "at": datetime.now(UTC)})
        plain = [tuple(row) for row in conn.sqlalchemy().execute(query)]
        return prepared, plain, changed.rowcount

    prepared, plain, changed = await sqlite_meta.db.run_sync(both)
    assert prepared == plain and len(prepared) == 3
    assert all(row[2].tzinfo is UTC and row[3] is None for row in prepared)
    assert changed == 2
    prepared_here = sqlite_meta.db._sqlite._prepared if sqlite_meta.db._sqlite else None
    assert prepared_here is not None and prepared_here.get(query, (), False) is not None


async def test_an_empty_in_list_is_left_to_sqlalchemy(sqlite_meta: Metadata) -> None:
    query = hot_statement(select(objects.c.oid).where(objects.c.oid.in_(bindparam("oids", expanding=True))))

    def empty(conn: SqlConnection, _wait: Waiter) -> list[Any]:
        return list(conn.execute(query, {"oids": []}))

    assert await sqlite_meta.db.run_sync(empty) == []


async def test_prepared_statements_raise_sqlalchemy_errors(sqlite_meta: Metadata) -> None:
    """A prepared statement's broken foreign key is still SQLAlchemy's IntegrityError."""
    link = hot_statement(insert_ignore(repo_objects, "sqlite"))
    now = datetime.now(UTC)

    def orphan(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(insert_ignore(owner_usage, "sqlite"), {"owner": "acme"})
        conn.execute(link, {"repo_id": 999, "oid": str(_oid(1)), "created_at": now, "size": 1, "uploader_id": None})

    for _ in range(3):
        with pytest.raises(IntegrityError):
            await sqlite_meta.db.run_sync(orphan)
    assert await _count(sqlite_meta, owner_usage) == 0


async def test_a_new_driver_connection_keeps_the_transaction_whole(sqlite_meta: Metadata) -> None:
    """After the pool opens a new connection, the first statement run by SQLAlchemy (on an engine made for that
    connection) after prepared ones must not lose their writes."""
    first = hot_statement(insert_ignore(owner_usage, "sqlite"))

    def warm(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(first, {"owner": "warm"})

    await sqlite_meta.db.run_sync(warm)
    async with sqlite_meta.db.engine.connect() as conn:
        await conn.invalidate()  # the pool opens a new sqlite3 connection (and driver thread) next time
    now = datetime.now(UTC)

    def mixed(conn: SqlConnection, _wait: Waiter) -> None:
        conn.execute(first, {"owner": "acme"})  # prepared
        conn.execute(repos.insert(), {"path": "acme/game", "created_at": now})  # first through SQLAlchemy

    await sqlite_meta.db.run_sync(mixed)
    assert (await _count(sqlite_meta, owner_usage), await _count(sqlite_meta, repos)) == (2, 1)


async def test_links_ending_together_share_one_sqlite_trip(sqlite_meta: Metadata, trips: list[str]) -> None:
    """Group commit on SQLite: the link statements bypass SQLAlchemy's events there, so the trips are counted."""
    repo = await sqlite_meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    trips.clear()
    await asyncio.gather(*(sqlite_meta.objects.link(repo.id, {_oid(n): 100 + n}) for n in range(20)))
    assert 1 <= trips.count("_write_transaction") <= 2  # the first may start alone; the other 19 go together
    held = await sqlite_meta.objects.held_sizes(repo.id, [_oid(n) for n in range(20)])
    assert held == {_oid(n): 100 + n for n in range(20)}


async def test_a_cancelled_caller_ends_the_threads_wait_for_the_loop(sqlite_meta: Metadata) -> None:
    """The thread waits for the store's answer; a caller that goes (cancelled, or timed out) ends that wait at once
    and the transaction rolls back (unbounded here: without that, this would wait for ever)."""
    asked, never = asyncio.Event(), asyncio.Event()

    async def no_answer() -> None:
        asked.set()
        await never.wait()

    def waits(conn: SqlConnection, wait: Waiter) -> None:
        conn.execute(insert_ignore(owner_usage, "sqlite"), {"owner": "acme"})
        wait(no_answer())

    running = asyncio.ensure_future(sqlite_meta.db.run_sync(waits, bounded=False))
    await asked.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await _count(sqlite_meta, owner_usage) == 0
    never.set()  # the store's late answer is dropped
    await asyncio.sleep(0)


async def test_a_sqlite_trip_that_waits_for_the_pool_is_counted(sqlite_meta: Metadata) -> None:
    db = sqlite_meta.db
    before = db.pool_stats()
    release, holding = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.transaction():
            holding.set()
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await holding.wait()
    waiting = asyncio.ensure_future(db.run_sync(lambda conn, wait: None))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # the one connection is taken
    release.set()
    await asyncio.gather(holder, waiting)
    after = db.pool_stats()
    assert after.waits == before.waits + 1 and after.wait_seconds > before.wait_seconds
    assert after.in_use == 0


async def test_releasing_memory_keeps_the_database_usable(meta: Metadata) -> None:
    """SQLite's page cache goes back to the heap (``PRAGMA shrink_memory``); the network databases have nothing to
    do. Either way the next transaction works."""
    repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
    await meta.objects.link(repo.id, {_oid(1): 10})
    await meta.db.release_memory()
    assert await meta.objects.held_sizes(repo.id, [_oid(1)]) == {_oid(1): 10}
