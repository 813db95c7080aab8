"""Argon2id checks run on a small pool of their own, and refuse at once (503) rather than queue without bound."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lfsd.core.errors import ServiceUnavailable
from lfsd.passwords import Argon2Passwords


@pytest.fixture
def passwords() -> Argon2Passwords:
    return Argon2Passwords(threads=1, queue=1)


async def test_checks_beyond_threads_and_queue_are_refused_at_once(passwords: Argon2Passwords) -> None:
    stored = passwords.hash("right")
    try:
        results = await asyncio.gather(
            *(passwords.verify(stored, guess) for guess in ("right", "wrong", "right", "right")),
            return_exceptions=True,
        )
        # One runs, one waits, the rest are refused without being hashed.
        assert results[:2] == [True, False]
        for refused in results[2:]:
            assert isinstance(refused, ServiceUnavailable)
            assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        # The slots come back once the checks are done.
        assert await passwords.verify(stored, "right") is True
    finally:
        passwords.close()


async def test_checks_run_on_at_most_their_own_threads() -> None:
    passwords = Argon2Passwords(threads=2, queue=8)
    stored = passwords.hash("x")
    try:
        assert all(await asyncio.gather(*(passwords.verify(stored, "x") for _ in range(10))))
        names = [thread.name for thread in threading.enumerate() if thread.name.startswith("lfsd-argon2")]
        assert 1 <= len(names) <= 2
    finally:
        passwords.close()
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("lfsd-argon2")]


async def test_unknown_users_cost_a_decoy_hash_and_fail(passwords: Argon2Passwords) -> None:
    try:
        assert await passwords.verify(None, "lfsd-decoy-password") is False
        assert passwords._decoy is not None
    finally:
        passwords.close()
