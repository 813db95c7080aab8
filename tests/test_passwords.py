"""Argon2id checks run on a small pool of their own, and refuse at once (503) rather than queue without bound."""

from __future__ import annotations

import asyncio
import subprocess
import sys
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
            *(passwords.verify(stored, guess) for guess in ("right", "wrong", "other", "another")),
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


async def test_identical_checks_at_once_share_one_hash() -> None:
    # git-lfs opens several connections with the same credentials at once: one check, one 19 MiB work area.
    passwords = Argon2Passwords(threads=1, queue=0)
    stored = passwords.hash("right")
    try:
        results = await asyncio.gather(*(passwords.verify(stored, "right") for _ in range(5)), return_exceptions=True)
        assert results == [True] * 5
        assert await passwords.verify(stored, "wrong") is False  # the slot came back; nothing was remembered
        assert passwords._running == {}
    finally:
        passwords.close()


async def test_a_caller_leaving_does_not_cancel_a_shared_check() -> None:
    passwords = Argon2Passwords(threads=1, queue=0)
    stored = passwords.hash("right")
    try:
        first = asyncio.ensure_future(passwords.verify(stored, "right"))
        second = asyncio.ensure_future(passwords.verify(stored, "right"))
        await asyncio.sleep(0)
        first.cancel()
        assert await second is True
        with pytest.raises(asyncio.CancelledError):
            await first
    finally:
        passwords.close()


def test_argon2_is_loaded_on_the_first_password_only() -> None:
    script = (
        "import sys\n"
        "from lfsd.passwords import Argon2Passwords, check_available\n"
        "p = Argon2Passwords()\n"
        "check_available()\n"
        "assert 'argon2' not in sys.modules\n"
        "p.hash('x')\n"
        "assert 'argon2' in sys.modules\n"
        "p.close()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
