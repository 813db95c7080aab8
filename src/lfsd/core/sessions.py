"""Web sessions: a signed-in person, remembered server-side so that any replica can serve them.

The browser holds a random session id; the store keeps only its SHA-256, so a copy of the database cannot be replayed
as a cookie. Each session has its own CSRF secret. Every request reads the session together with its user: a user
who is disabled or deleted is signed out at once, on every replica, with no cache to expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from lfsd.core.auth import Identity
from lfsd.core.errors import Unauthorized
from lfsd.core.login import PasswordLogin
from lfsd.core.names import InvalidUserName, UserName

# The session is touched at most this often: one write a minute per active person, not one per page.
LAST_SEEN_PRECISION = timedelta(minutes=1)
SESSION_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    identity: Identity
    csrf: str
    expires_at: datetime
    last_seen_at: datetime


class SessionStore(Protocol):
    async def create(
        self, digest: str, user_id: int, csrf: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def find(self, digest: str, now: datetime) -> Session | None:
        """The unexpired session with this digest whose user is enabled and not deleted, else None."""

    async def touch(self, digest: str, now: datetime) -> None: ...

    async def delete(self, digest: str) -> None: ...

    async def purge_expired(self, now: datetime) -> int: ...


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """A constant-time comparison of two CSRF tokens (anything not ASCII is simply wrong)."""
    return given.isascii() and hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))


class SessionService:
    def __init__(
        self, store: SessionStore, logins: PasswordLogin, clock: Callable[[], datetime], lifetime: timedelta
    ) -> None:
        self._store = store
        self._logins = logins
        self._clock = clock
        self._lifetime = lifetime

    async def sign_in(self, name: str, password: str, address: str) -> tuple[str, Session]:
        """A new session id (for the cookie only) and its session; ``Unauthorized`` or ``TooManyRequests`` like the
        API's password logins, through the same throttle."""
        try:
            parsed = UserName.parse(name)
        except InvalidUserName:
            # No user can have this name: the API's answer to it, and the database is never asked.
            raise Unauthorized("invalid credentials") from None
        identity = await self._logins.authenticate(parsed, password, address)
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._lifetime
        await self._store.purge_expired(now)  # an indexed range: expired sessions go as new ones come
        await self._store.create(session_digest(session_id), identity.user_id, csrf, now, expires)
        return session_id, Session(identity, csrf, expires, now)

    async def resume(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > 128 or not session_id.isascii():
            return None
        digest = session_digest(session_id)
        now = self._clock()
        session = await self._store.find(digest, now)
        if session is not None and session.last_seen_at < now - LAST_SEEN_PRECISION:
            await self._store.touch(digest, now)
        return session

    async def sign_out(self, session_id: str) -> None:
        await self._store.delete(session_digest(session_id))

    async def purge(self) -> int:
        return await self._store.purge_expired(self._clock())
