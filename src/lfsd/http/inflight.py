"""Transfers in progress (a gauge per direction), the per-user cap and its queue; after a burst of uploads, freed
heap memory goes back to the OS."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge

from lfsd.core.errors import TooManyRequests
from lfsd.memory import MemoryReleaser
from lfsd.offload import in_thread

# Wait this long after the last upload before trimming, so back-to-back small uploads do not trim each time.
TRIM_DELAY_SECONDS = 1.0
HOLD_SMOOTHING = 0.1  # weight of the newest slot time in the running mean
RETRY_AFTER_MAX = 60


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
        self._waiting: dict[str, deque[asyncio.Future[Slot]]] = {}
        self._mean_hold = 1.0  # seconds a slot is held, smoothed: what Retry-After is made of
        self._trim: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        """Transfers holding a slot now, every user's together (the web UI's status page)."""
        return sum(self._per_user.values())

    def admit(self, user: str, limit: int) -> Slot:
        """Take one of ``user``'s ``limit`` transfer slots, or 429 (git-lfs waits for Retry-After and tries again).

        The check and the taking are one step, with no await between them: concurrent requests cannot all pass.
        """
        held = self._per_user.get(user, 0)
        if held >= limit:
            raise TooManyRequests(f"at most {limit} transfers at once per user", retry_after=self._retry_after(user))
        self._per_user[user] = held + 1
        return Slot(self, user)

    async def admit_waiting(self, user: str, limit: int, wait: float) -> Slot:
        """``admit``, but over the cap wait up to ``wait`` seconds for a slot first, in arrival order (issue 17:
        a client with 64 concurrent transfers against a small cap ran out of retries on 429s).

        A slot that ends goes straight to the first waiter (``_leave``): it is never free in between, so a newcomer
        cannot take it, and the cap holds at every moment.
        """
        if wait <= 0 or (self._per_user.get(user, 0) < limit and not self._waiting.get(user)):
            return self.admit(user, limit)
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(user, deque())
        queue.append(waiter)
        try:
            async with asyncio.timeout(wait):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                waiter.result().release()  # granted just as the wait ended (or was cancelled): pass it on
            waiter.cancel()
            if isinstance(exc, TimeoutError):
                queue.remove(waiter)  # the ones still ahead or behind are the queue a retry will meet
                raise TooManyRequests(
                    f"at most {limit} transfers at once per user", retry_after=self._retry_after(user)
                ) from None
            raise
        finally:
            if waiter in queue:
                queue.remove(waiter)
            if not queue and self._waiting.get(user) is queue:
                del self._waiting[user]

    def _retry_after(self, user: str) -> int:
        """Seconds until a slot is likely free for one more arrival: the queue it would join, times the mean time a
        slot is held, spread over the user's slots."""
        held = max(1, self._per_user.get(user, 0))
        ahead = len(self._waiting.get(user, ())) + 1
        return max(1, min(RETRY_AFTER_MAX, math.ceil(ahead * self._mean_hold / held)))

    def _leave(self, user: str, held_for: float) -> None:
        self._mean_hold += (held_for - self._mean_hold) * HOLD_SMOOTHING
        queue = self._waiting.get(user)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(Slot(self, user))  # the slot passes on: the count does not change
                return
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
        self._since = time.monotonic()

    def release(self) -> None:
        if self._user is not None:
            self._inflight._leave(self._user, time.monotonic() - self._since)
            self._user = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
