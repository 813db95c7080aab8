"""Transfers in progress (a gauge per direction); after a burst of uploads, freed heap memory goes back to the OS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge

from lfsd.core.errors import TooManyRequests
from lfsd.memory import MemoryReleaser
from lfsd.offload import in_thread

# Wait this long after the last upload before trimming, so back-to-back small uploads do not trim each time.
TRIM_DELAY_SECONDS = 1.0


class InFlight:
    def __init__(
        self, memory: MemoryReleaser, gauge: Gauge | None = None, trim_delay: float = TRIM_DELAY_SECONDS
    ) -> None:
        self._memory = memory
        self._gauge = gauge
        self._trim_delay = trim_delay
        self.uploads = 0
        self.downloads = 0
        self._per_user: dict[str, int] = {}
        self._trim: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, user: str, limit: int) -> Slot:
        """Take one of ``user``'s ``limit`` transfer slots, or 429 (git-lfs waits for Retry-After and tries again).

        The check and the taking are one step, with no await between them: concurrent requests cannot all pass.
        """
        held = self._per_user.get(user, 0)
        if held >= limit:
            raise TooManyRequests(f"at most {limit} transfers at once per user")
        self._per_user[user] = held + 1
        return Slot(self, user)

    def _leave(self, user: str) -> None:
        left = self._per_user[user] - 1
        if left:
            self._per_user[user] = left
        else:
            del self._per_user[user]

    @asynccontextmanager
    async def upload(self) -> AsyncIterator[None]:
        self.uploads += 1
        self._move("upload", 1)
        try:
            yield
        finally:
            self.uploads -= 1
            self._move("upload", -1)
            if self.uploads == 0:
                self._schedule_trim()

    @asynccontextmanager
    async def download(self) -> AsyncIterator[None]:
        self.downloads += 1
        self._move("download", 1)
        try:
            yield
        finally:
            self.downloads -= 1
            self._move("download", -1)

    def _move(self, direction: str, delta: int) -> None:
        if self._gauge is not None:
            self._gauge.labels(direction).inc(delta)

    def _schedule_trim(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        self._trim = asyncio.get_running_loop().call_later(self._trim_delay, self._start_trim)

    def _start_trim(self) -> None:
        self._trim = None
        if self.uploads == 0:
            task = asyncio.create_task(in_thread(self._memory.release))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)


class Slot:
    """One admitted transfer; released once, by ``with`` or by whoever ends the transfer (a response being sent)."""

    def __init__(self, inflight: InFlight, user: str) -> None:
        self._inflight = inflight
        self._user: str | None = user

    def release(self) -> None:
        if self._user is not None:
            self._inflight._leave(self._user)
            self._user = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
