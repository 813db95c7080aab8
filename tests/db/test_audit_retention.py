"""Audit retention on every database: ``prune`` deletes only entries older than the cut, in chunks, and the prune
is itself recorded; the server's daily task records nothing when there was nothing to prune."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from lfsd.core.admin import Administration
from lfsd.core.audit import Actor, AuditEntry, AuditQuery, Outcome
from lfsd.core.errors import Forbidden
from lfsd.db import audit as sql_audit
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.retention import DailyPrune, prune_daily, prune_once

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _admin(meta: Metadata) -> Administration:
    return Administration(meta.users, meta.tokens, meta.repos, meta.locks, meta.audit, lambda: NOW)


async def _entries(meta: Metadata, ages_in_days: list[float]) -> None:
    for number, age in enumerate(ages_in_days):
        at = NOW - timedelta(days=age)
        await meta.audit.record(AuditEntry(at, "cli:test", "user.add", f"user:u{number}", "local", Outcome.OK))


async def test_prune_deletes_older_entries_only_and_is_recorded(
    meta: Metadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_audit, "PRUNE_CHUNK", 2)  # several chunks, one partial
    await _entries(meta, [400, 100, 31, 30.5, 29, 1, 0])
    pruned = await _admin(meta).prune_audit(Actor.cli("ops"), 30)
    assert pruned == 4
    left = await meta.audit.entries(AuditQuery(limit=100))
    assert [e.action for e in left] == ["audit.prune", "user.add", "user.add", "user.add"]
    assert sorted(e.target for e in left[1:]) == ["user:u4", "user:u5", "user:u6"]
    record = left[0]
    assert (record.actor, record.outcome, record.details["pruned"], record.details["older_than_days"]) == (
        "cli:ops",
        Outcome.OK,
        4,
        30,
    )
    # Nothing older left: a second prune deletes nothing, and says so.
    assert await _admin(meta).prune_audit(Actor.cli("ops"), 30) == 0
    assert (await meta.audit.entries(AuditQuery(limit=1)))[0].details["pruned"] == 0


async def test_prune_needs_a_server_admin(meta: Metadata) -> None:
    await _entries(meta, [400])
    user = Actor(name="alice", user_id=7, is_admin=False, address="192.0.2.1")
    with pytest.raises(Forbidden):
        await _admin(meta).prune_audit(user, 30)
    (denied, kept) = await meta.audit.entries(AuditQuery(limit=10))
    assert (denied.action, denied.outcome, kept.action) == ("audit.prune", Outcome.DENIED, "user.add")


async def test_the_daily_prune_records_only_when_it_pruned(meta: Metadata) -> None:
    now = utcnow()
    await meta.audit.record(AuditEntry(now - timedelta(days=90), "cli:t", "user.add", "user:old", "local", Outcome.OK))
    assert await prune_once(meta, 30) == 1
    assert await prune_once(meta, 30) == 0  # a second replica's run, the same day
    entries = await meta.audit.entries(AuditQuery(limit=10, action="audit.prune"))
    assert [(e.actor, e.details["pruned"]) for e in entries] == [("lfsd:retention", 1)]


async def test_the_daily_task_prunes_and_stops_with_the_server(meta: Metadata) -> None:
    await meta.audit.record(
        AuditEntry(utcnow() - timedelta(days=90), "cli:t", "user.add", "user:old", "local", Outcome.OK)
    )
    task = asyncio.create_task(prune_daily(meta, 30, first_delay=0))
    for _ in range(200):
        if await meta.audit.entries(AuditQuery(limit=1, action="audit.prune")):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.action for e in await meta.audit.entries(AuditQuery(limit=10))] == ["audit.prune"]
    # The lifespan's handle: created and stopped before its first run, it prunes nothing.
    waiting = DailyPrune(meta, 30)
    await waiting.stop()
