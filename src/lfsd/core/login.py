"""Password logins: throttled, verified on a bounded pool, and remembered for a few minutes once verified.

Argon2id is what makes a password login expensive (tens of milliseconds and 19 MiB each), and git sends the password
with every batch request. A verified login is remembered under a keyed hash of the user name and password, never the
password itself, together with a digest of the stored password hash it was checked against: the user row is read on
every request anyway (a cheap indexed query), so a changed password or a disabled user misses the cache at once.
Failures are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol, TypeVar

from lfsd.core.auth import Identity
from lfsd.core.errors import Unauthorized
from lfsd.core.throttle import LoginThrottle

K = TypeVar("K", contravariant=True)
V = TypeVar("V")


class Cache(Protocol[K, V]):
    """A bounded map whose entries expire; implementations decide size and lifetime."""

    def get(self, key: K) -> V | None: ...

    def put(self, key: K, value: V) -> None: ...


@dataclass(frozen=True, slots=True)
class PasswordRecord:
    """An enabled user who can log in with a password, and the stored Argon2 hash."""

    identity: Identity
    password_hash: str


class PasswordVerifier(Protocol):
    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; with None, the same work against a decoy and False."""


@dataclass(frozen=True, slots=True)
class VerifiedLogin:
    user_id: int
    epoch: bytes  # a digest of the password hash the password was verified against


class PasswordLookup(Protocol):
    async def password_record(self, name: str) -> PasswordRecord | None:
        """The enabled user ``name`` with a password, else None."""


def _epoch(password_hash: str) -> bytes:
    return hashlib.sha256(password_hash.encode("utf-8")).digest()


class PasswordLogin:
    def __init__(
        self,
        users: PasswordLookup,
        verifier: PasswordVerifier,
        throttle: LoginThrottle,
        cache: Cache[bytes, VerifiedLogin],
        cache_key: bytes,
    ) -> None:
        self._users = users
        self._verifier = verifier
        self._throttle = throttle
        self._cache = cache
        self._cache_key = cache_key

    def _key(self, name: str, password: str) -> bytes:
        message = name.encode("utf-8", "surrogatepass") + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._cache_key, message, hashlib.sha256).digest()

    async def authenticate(self, name: str, password: str, address: str) -> Identity:
        """The user, or ``Unauthorized``; ``TooManyRequests`` before any hashing when this client must wait."""
        record = await self._users.password_record(name)
        key = self._key(name, password)
        known = self._cache.get(key) if record is not None else None
        if (
            record is not None
            and known is not None
            and known.user_id == record.identity.user_id
            and hmac.compare_digest(known.epoch, _epoch(record.password_hash))
        ):
            return record.identity
        await self._throttle.check(name, address)
        # Unknown users are checked against a decoy hash: the same work, so timing does not reveal user names.
        if not await self._verifier.verify(record.password_hash if record else None, password) or record is None:
            await self._throttle.failed(name, address)
            raise Unauthorized("invalid credentials")
        self._cache.put(key, VerifiedLogin(record.identity.user_id, _epoch(record.password_hash)))
        await self._throttle.succeeded(name, address)
        return record.identity
