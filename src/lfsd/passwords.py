"""Password hashing with Argon2id (argon2-cffi); verification runs off the event loop."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lfsd.offload import in_thread


class Argon2Passwords:
    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # Checked against when the user does not exist, so that response time does not reveal user names.
        self._decoy = self._hasher.hash("lfsd-decoy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        return await in_thread(self._verify, stored, password)
