"""The one path every administrative change takes: check who may, do it, record the outcome (never a secret).

``Administration``, the SSH key use cases and the quota use cases all run their work through ``Audited``, so a
refusal, a failure and a success are recorded the same way wherever the change comes from (CLI, admin API, web UI).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

from lfsd.core.audit import Actor, AuditEntry, AuditLog, Outcome, check_no_secret
from lfsd.core.errors import Forbidden, LfsError

T = TypeVar("T")


class Audited:
    def __init__(self, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self._audit = audit
        self._clock = clock

    async def record(
        self, actor: Actor, action: str, target: str, outcome: Outcome, details: Mapping[str, object]
    ) -> None:
        check_no_secret(details)
        await self._audit.record(
            AuditEntry(self._clock(), actor.name, action, target, actor.address, outcome, dict(details))
        )

    async def run(
        self,
        actor: Actor,
        action: str,
        target: str,
        work: Callable[[], Awaitable[T]],
        *,
        allowed: bool,
        refusal: str,
        details: Mapping[str, object] | None = None,
        change: bool = True,
    ) -> T:
        """Run ``work`` when ``allowed``; else record the refusal and raise ``Forbidden(refusal)``. Changes are
        recorded with their outcome; reads only when refused."""
        details = dict(details or {})
        if not allowed:
            await self.record(actor, action, target, Outcome.DENIED, details)
            raise Forbidden(refusal)
        try:
            result = await work()
        except LfsError as exc:
            if change:
                # The failure is what the caller must see; a log that cannot be written must not hide it.
                with contextlib.suppress(LfsError):
                    await self.record(actor, action, target, Outcome.FAILED, {**details, "error": exc.message})
            raise
        if change:
            await self.record(actor, action, target, Outcome.OK, details)
        return result
