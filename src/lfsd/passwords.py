"""Password hashing with Argon2id (argon2-cffi); verification runs on a small pool of its own, off the event loop.

Each check costs tens of milliseconds of CPU and a 19 MiB work area. On the shared I/O pool a flood of wrong
passwords queued without bound in front of uploads and grew the resident size by hundreds of MiB. Here at most
``threads`` checks run at once and at most ``queue`` wait; any more are refused at once with 503 + Retry-After, so
memory stays flat and nothing else (token checks, file I/O) waits behind a password hash. Checks of the same
password against the same hash that arrive while one runs (git-lfs opens several connections at once, each with the
same credentials, before the login cache knows them) wait for that one instead of hashing again: one work area, not
one per connection.

argon2-cffi is imported on the first hash or check, not at start-up (a server whose clients use tokens never loads
it); ``check_available`` lets the server fail at start when it is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from lfsd.core.errors import ServiceUnavailable
from lfsd.memory import MemoryReleaser

if TYPE_CHECKING:
    from argon2 import PasswordHasher


def check_available() -> None:
    """Raise at start-up, not at the first password, when argon2-cffi is not installed."""
    if importlib.util.find_spec("argon2") is None:
        raise RuntimeError("argon2-cffi is not installed: password logins need it (pip install argon2-cffi)")


class Argon2Passwords:
    def __init__(self, *, threads: int = 2, queue: int = 16) -> None:
        self._hasher_made: PasswordHasher | None = None
        self._decoy: str | None = None
        self._decoy_lock = threading.Lock()
        self._memory = MemoryReleaser()
        # Threads start on first use, so a CLI command that never checks a password starts none.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lfsd-argon2")
        # Admission for running + waiting checks; a threading semaphore because the CLI and tests may call in from
        # more than one event loop.
        self._admitted = threading.BoundedSemaphore(threads + queue)
        # Checks running or waiting, by (stored hash, password): a second identical check joins the first. A
        # reentrant lock: cancelling a queued check runs its done callback at once, which takes the lock too.
        self._running: dict[tuple[str | None, str], _Check] = {}
        self._running_lock = threading.RLock()

    @property
    def _hasher(self) -> PasswordHasher:
        if self._hasher_made is None:
            from argon2 import PasswordHasher  # loaded on the first password (module docstring)

            # OWASP's Argon2id minimum (19 MiB, 2 passes): argon2-cffi's default of 64 MiB per check would make each
            # password login a 64 MiB spike in the server's resident memory.
            self._hasher_made = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        return self._hasher_made

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _decoy_hash(self) -> str:
        # Checked against when the user does not exist, so that response time does not reveal user names.
        with self._decoy_lock:
            if self._decoy is None:
                self._decoy = self._hasher.hash("lfsd-decoy-password")
            return self._decoy

    def _verify(self, stored: str | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return self._hasher.verify(stored or self._decoy_hash(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        finally:
            # glibc keeps the 19 MiB work area in the thread's heap after free; give it back to the OS.
            self._memory.release()

    async def verify(self, stored: str | None, password: str) -> bool:
        key = (stored, password)
        with self._running_lock:
            check = self._running.get(key)
            if check is None:
                check = self._start(key)
            check.waiters += 1
        try:
            # Shielded: one caller hanging up must not cancel a check that others wait for.
            return await asyncio.shield(asyncio.wrap_future(check.future))
        finally:
            with self._running_lock:
                check.waiters -= 1
                if check.waiters == 0:
                    check.future.cancel()  # nobody waits: a check still queued never runs (a running one ends)

    def _start(self, key: tuple[str | None, str]) -> _Check:
        """A new check (under ``_running_lock``), admitted or refused at once."""
        if not self._admitted.acquire(blocking=False):
            raise ServiceUnavailable("too many password checks in progress: try again shortly", retry_after=1)
        try:
            future = self._pool.submit(self._verify, *key)
        except BaseException:
            self._admitted.release()
            raise
        check = self._running[key] = _Check(future)  # before the callback, which may run at once and remove it

        def done(_: Future[bool]) -> None:
            # Released when the check ends, never earlier: a client that hangs up does not free a slot while its
            # hash is still running.
            with self._running_lock:
                self._running.pop(key, None)
            self._admitted.release()

        future.add_done_callback(done)
        return check

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Check:
    __slots__ = ("future", "waiters")

    def __init__(self, future: Future[bool]) -> None:
        self.future = future
        self.waiters = 0
