"""Password hashing with Argon2id (argon2-cffi); verification runs off the event loop."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lfsd.memory import MemoryReleaser
from lfsd.offload import in_thread


class Argon2Passwords:
    def __init__(self) -> None:
        # OWASP's Argon2id minimum (19 MiB, 2 passes): argon2-cffi's default of 64 MiB per check would make each
        # password login a 64 MiB spike in the server's resident memory.
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._decoy: str | None = None
        self._decoy_lock = threading.Lock()
        self._memory = MemoryReleaser()

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
        return await in_thread(self._verify, stored, password)
