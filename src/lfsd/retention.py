"""Audit retention in the server: with ``audit_retention_days`` set, entries older than that are pruned once a day.

Safe with several replicas and no coordination: each prunes on its own schedule; the deletion is idempotent and
chunked (``SqlAuditLog.prune``), and a run that deletes nothing records nothing, so N replicas add at most one
audit row per day that had something to prune, plus an occasional second one with a handful of rows.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from lfsd.core.admin import Administration
from lfsd.core.audit import Actor
from lfsd.core.errors import LfsError
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata

log = logging.getLogger("lfsd.retention")

DAY_SECONDS = 86400.0
FIRST_RUN_DELAY = 60.0  # after start: the server is serving before it does housekeeping


async def prune_once(meta: Metadata, days: int) -> int:
    admin = Administration(meta.users, meta.tokens, meta.repos, meta.locks, meta.audit, utcnow)
    return await admin.prune_audit(Actor.retention(), days, record_nothing=False)


async def prune_daily(meta: Metadata, days: int, *, first_delay: float = FIRST_RUN_DELAY) -> None:
    """Runs until cancelled; a failed run is logged and tried again the next day."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            pruned = await prune_once(meta, days)
            log.info("audit retention: pruned %d entries older than %d days", pruned, days)
        except LfsError as exc:
            log.warning("audit retention failed, trying again tomorrow: %s", exc.message)
        await asyncio.sleep(DAY_SECONDS)


class DailyPrune:
    """The background task, started and stopped with the server's lifespan."""

    def __init__(self, meta: Metadata, days: int) -> None:
        self._task = asyncio.create_task(prune_daily(meta, days), name="lfsd-audit-retention")

    async def stop(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
