"""Failed-login throttling: who may try a password now, and for how long the others must wait.

Three counters of failed password logins, each a fixed window that starts at its first failure:

- per (user name, client address): the tight limit, for one client guessing one account;
- per client address: a client spraying guesses over many user names;
- per user name, from anywhere: a looser limit against guessing spread over many addresses.

The per-user limit would let anyone lock a user out by failing on purpose, so it does not apply to an address the
user logged in from successfully within ``trusted_seconds``: the user's own machines keep working while a stranger's
guesses are refused. Tokens (256 random bits) are never throttled, so git with a token is never locked out. A
success clears only its own (user, address) counter: the per-address counter stays, or one valid account would let
a sprayer reset it between guesses.

Checks happen before any password is hashed; a refused attempt is not counted (it learnt nothing). Attempts that
pass the check at the same moment may all run before their failures are counted: at most the password pool's size
more, which the pool's own bound caps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lfsd.core.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class Window:
    """A counter's value and the seconds until its window closes (0: no window open)."""

    count: int
    seconds_left: int


class FailureCounter(Protocol):
    """Counters that expire: in this process, or shared by every replica (Redis)."""

    async def peek(self, keys: Sequence[str]) -> list[Window]:
        """The current window of each key, in order."""

    async def add(self, keys: Sequence[str], window_seconds: int) -> None:
        """Count one more in each key; a key's window starts (and expires) with its first count."""

    async def reset(self, key: str) -> None: ...

    async def mark(self, key: str, seconds: int) -> None:
        """Set a flag (counter 1) that expires after ``seconds``, whatever it was before."""


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    window_seconds: int = 300
    per_user_address: int = 10
    per_address: int = 50
    per_user: int = 100
    trusted_seconds: int = 7 * 86400


def _digest(value: str) -> str:
    # Short and bounded whatever the client sent; never the raw name in a Redis key or a log.
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


class LoginThrottle:
    def __init__(self, counter: FailureCounter, limits: ThrottleLimits) -> None:
        self._counter = counter
        self._limits = limits

    def _keys(self, name: str, address: str) -> tuple[str, str, str, str]:
        user, addr = _digest(name), _digest(address)
        return f"ua:{user}:{addr}", f"a:{addr}", f"u:{user}", f"ok:{user}:{addr}"

    async def check(self, name: str, address: str) -> None:
        """Raise ``TooManyRequests`` (429 + Retry-After) when this attempt must not be tried now."""
        user_address, addr, user, trusted = self._keys(name, address)
        pair, by_address, by_user, known = await self._counter.peek([user_address, addr, user, trusted])
        limits = self._limits
        over = [
            window
            for window, limit in (
                (pair, limits.per_user_address),
                (by_address, limits.per_address),
                (by_user, limits.per_user if known.count == 0 else None),
            )
            if limit is not None and window.count >= limit
        ]
        if over:
            retry_after = max(1, *(window.seconds_left for window in over))
            raise TooManyRequests("too many failed logins: try again later", retry_after=retry_after)

    async def failed(self, name: str, address: str) -> None:
        user_address, addr, user, _ = self._keys(name, address)
        await self._counter.add([user_address, addr, user], self._limits.window_seconds)

    async def succeeded(self, name: str, address: str) -> None:
        user_address, _, _, trusted = self._keys(name, address)
        await self._counter.reset(user_address)
        await self._counter.mark(trusted, self._limits.trusted_seconds)
