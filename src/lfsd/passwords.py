"""Password hashing with Argon2id (argon2-cffi); verification runs on a small pool of its own, off the event loop.

Each check costs tens of milliseconds of CPU and a 19 MiB work area. On the shared I/O pool a flood of wrong
passwords queued without bound in front of uploads and grew the resident size by hundreds of MiB. Here at most
``threads`` checks run at once and at most ``queue`` wait; any more are refused at once with 503 + Retry-After, so
memory stays flat and nothing else (token checks, file I/O) waits behind a password hash.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lfsd.core.errors import ServiceUnavailable
from lfsd.memory import MemoryReleaser


class Argon2Passwords:
    def __init__(self, *, threads: int = 2, queue: int = 16) -> None:
        # OWASP's Argon2id minimum (19 MiB, 2 passes): argon2-cffi's default of 64 MiB per check would make each
        # password login a 64 MiB spike in the server's resident memory.
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._decoy: str | None = None
        self._decoy_lock = threading.Lock()
        self._memory = MemoryReleaser()
        # Threads start on first use, so a CLI command that never checks a password starts none.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lfsd-argon2")
        # Admission for running + waiting checks; a threading semaphore because the CLI and tests may call in from
        # more than one event loop.
        self._admitted = threading.BoundedSemaphore(threads + queue)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _decoy_hash(self) -> str:
        # Checked against when the user does not exist, so that response time does not reveal user names.
        with self._decoy_lock:
            if self._decoy is None:
                self._decoy = self._hasher.hash("lfsd-decoy-password")
            return self._decoy

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._decoy_hash(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        finally:
            # glibc keeps the 19 MiB work area in the thread's heap after free; give it back to the OS.
            self._memory.release()

    async def verify(self, stored: str | None, password: str) -> bool:
        if not self._admitted.acquire(blocking=False):
            raise ServiceUnavailable("too many password checks in progress: try again shortly", retry_after=1)
        try:
            future = self._pool.submit(self._verify, stored, password)
        except BaseException:
            self._admitted.release()
            raise
        # Released when the check ends or is cancelled before it started, never earlier: a client that hangs up
        # does not free a slot while its hash is still running.
        future.add_done_callback(lambda _: self._admitted.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
