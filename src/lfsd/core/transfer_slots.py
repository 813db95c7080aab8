"""The per-user cap on transfers at once, and its queue: one rule for every front end (HTTP, SSH) of a process.

A user holds at most ``limit`` transfer slots; one more either waits (in arrival order, up to ``wait`` seconds) or
is refused with 429 and a Retry-After made of the queue ahead and the mean time a slot is held. Users are keys such
as ``user:<id>``, so the HTTP API and SSH sessions of one user share one count when they share a ``TransferSlots``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from lfsd.core.errors import TooManyRequests

HOLD_SMOOTHING = 0.1  # weight of the newest slot time in the running mean
RETRY_AFTER_MAX = 60


def user_key(user_id: int) -> str:
    """The key of a signed-in user's slots (the HTTP API's ``Target.user`` spelling)."""
    return f"user:{user_id}"


class TransferSlots:
    def __init__(self) -> None:
        self._per_user: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[Slot]]] = {}
        self._mean_hold = 1.0  # seconds a slot is held, smoothed: what Retry-After is made of

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


class Slot:
    """One admitted transfer; released once, by ``with`` or by whoever ends the transfer (a response being sent)."""

    def __init__(self, slots: TransferSlots, user: str) -> None:
        self._slots = slots
        self._user: str | None = user
        self._since = time.monotonic()

    def release(self) -> None:
        if self._user is not None:
            self._slots._leave(self._user, time.monotonic() - self._since)
            self._user = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
