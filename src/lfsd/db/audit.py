"""The audit log in SQL: inserted, read newest first, never updated; deleted only by retention (``prune``)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import delete, or_, select

from lfsd.core.audit import (
    MAX_ACTION_LENGTH,
    MAX_ACTOR_LENGTH,
    MAX_ADDRESS_LENGTH,
    MAX_TARGET_LENGTH,
    AuditEntry,
    AuditQuery,
    Outcome,
)
from lfsd.db.database import Database
from lfsd.db.tables import audit

PRUNE_CHUNK = 5000


class SqlAuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditEntry) -> None:
        values = {
            "at": entry.at,
            "actor": entry.actor[:MAX_ACTOR_LENGTH],
            "action": entry.action[:MAX_ACTION_LENGTH],
            "target": entry.target[:MAX_TARGET_LENGTH],
            "address": entry.address[:MAX_ADDRESS_LENGTH],
            "outcome": str(entry.outcome),
            "details": json.dumps(dict(entry.details), sort_keys=True, default=str),
        }
        async with self._db.transaction() as conn:
            await conn.execute(audit.insert().values(**values))

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        statement = select(audit).order_by(audit.c.id.desc()).limit(query.limit)
        if query.actor is not None:
            statement = statement.where(audit.c.actor == query.actor)
        if query.action is not None:
            group = query.action.replace("\\", "").replace("%", "").replace("_", "\\_") + ".%"
            statement = statement.where(or_(audit.c.action == query.action, audit.c.action.like(group, escape="\\")))
        if query.since is not None:
            statement = statement.where(audit.c.at >= query.since)
        async with self._db.transaction() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            AuditEntry(
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                address=row.address,
                outcome=Outcome(row.outcome),
                details=json.loads(row.details),
                id=row.id,
            )
            for row in rows
        ]

    async def prune(self, before: datetime) -> int:
        """Delete entries older than ``before``, oldest first, in chunks of ``PRUNE_CHUNK`` rows, each its own
        short transaction: a large backlog never holds long locks, and replicas pruning at the same time only
        delete the same rows twice (the second finds them gone)."""
        pruned = 0
        while True:
            async with self._db.transaction() as conn:
                ids = (
                    (
                        await conn.execute(
                            select(audit.c.id).where(audit.c.at < before).order_by(audit.c.id).limit(PRUNE_CHUNK)
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    result = await conn.execute(delete(audit).where(audit.c.id.in_(ids)))
                    pruned += result.rowcount or 0
            if len(ids) < PRUNE_CHUNK:
                return pruned
