"""Password logins: the credential cache and the failed-login throttle, with a verifier that counts its hashes."""

from __future__ import annotations

import pytest

from lfsd.core.auth import Identity
from lfsd.core.errors import TooManyRequests, Unauthorized
from lfsd.core.login import PasswordLogin, PasswordRecord, VerifiedLogin
from lfsd.core.throttle import LoginThrottle, ThrottleLimits
from lfsd.state.memory import LruCache, MemoryFailureCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Users:
    """The user directory's password side, as the core sees it."""

    def __init__(self) -> None:
        self.records: dict[str, PasswordRecord] = {}

    def set(self, name: str, user_id: int, password: str) -> None:
        self.records[name] = PasswordRecord(Identity(user_id, name, False), f"hash({password})#{len(self.records)}")

    async def password_record(self, name: str) -> PasswordRecord | None:
        return self.records.get(name)


class CountingVerifier:
    """Stands in for Argon2: counts every hash, so a test sees which logins would have paid for one."""

    def __init__(self) -> None:
        self.hashes = 0

    async def verify(self, stored: str | None, password: str) -> bool:
        self.hashes += 1
        return stored is not None and stored.startswith(f"hash({password})#")


class Login:
    def __init__(self, limits: ThrottleLimits | None = None, cache_ttl: float = 300) -> None:
        self.clock = Clock()
        self.users = Users()
        self.verifier = CountingVerifier()
        self.cache: LruCache[bytes, VerifiedLogin] = LruCache(100, cache_ttl, self.clock)
        throttle = LoginThrottle(MemoryFailureCounter(clock=self.clock), limits or ThrottleLimits())
        self.login = PasswordLogin(self.users, self.verifier, throttle, self.cache, b"k" * 32)

    async def ok(self, name: str, password: str, address: str = "10.0.0.1") -> Identity:
        return await self.login.authenticate(name, password, address)

    async def refused(self, name: str, password: str, address: str = "10.0.0.1") -> type[Exception]:
        with pytest.raises((Unauthorized, TooManyRequests)) as caught:
            await self.login.authenticate(name, password, address)
        return caught.type


async def test_a_verified_password_is_hashed_once_then_remembered() -> None:
    t = Login()
    t.users.set("alice", 1, "pw")
    for _ in range(5):
        assert (await t.ok("alice", "pw")).user_id == 1
    assert t.verifier.hashes == 1


async def test_the_cache_holds_neither_password_nor_user_name() -> None:
    t = Login()
    t.users.set("alice", 1, "correct horse")
    await t.ok("alice", "correct horse")
    ((key, (_, value)),) = t.cache._entries.items()
    assert len(key) == 32 and b"correct horse" not in key and b"alice" not in key
    assert "correct horse" not in repr(value) and "alice" not in repr(value)


async def test_remembered_logins_expire() -> None:
    t = Login(cache_ttl=60)
    t.users.set("alice", 1, "pw")
    await t.ok("alice", "pw")
    t.clock.now += 61
    await t.ok("alice", "pw")
    assert t.verifier.hashes == 2


async def test_a_password_change_forgets_the_old_password_at_once() -> None:
    t = Login()
    t.users.set("alice", 1, "old")
    await t.ok("alice", "old")
    t.users.set("alice", 1, "new")
    assert await t.refused("alice", "old") is Unauthorized
    await t.ok("alice", "new")


async def test_a_disabled_or_deleted_user_is_refused_at_once() -> None:
    t = Login()
    t.users.set("alice", 1, "pw")
    await t.ok("alice", "pw")
    del t.users.records["alice"]  # the directory returns no record for a disabled user
    assert await t.refused("alice", "pw") is Unauthorized
    # Re-created with the same name and password: a new user, a new hash, no stale identity.
    t.users.set("alice", 2, "pw")
    assert (await t.ok("alice", "pw")).user_id == 2


async def test_failures_are_never_cached() -> None:
    t = Login()
    t.users.set("alice", 1, "pw")
    for _ in range(3):
        assert await t.refused("alice", "wrong") is Unauthorized
    assert await t.refused("nobody", "pw") is Unauthorized
    assert t.verifier.hashes == 4
    assert len(t.cache) == 0


async def test_throttled_before_any_hash_even_with_the_right_password() -> None:
    t = Login(ThrottleLimits(per_user_address=3, per_address=100, per_user=100, window_seconds=300))
    t.users.set("alice", 1, "pw")
    for _ in range(3):
        assert await t.refused("alice", "guess") is Unauthorized
    with pytest.raises(TooManyRequests) as caught:
        await t.ok("alice", "pw")
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "300"
    assert t.verifier.hashes == 3
    # The window closes 300 s after its first failure, and more attempts do not extend it.
    t.clock.now += 200
    assert await t.refused("alice", "pw") is TooManyRequests
    assert (await _retry_after(t, "alice", "pw")) == 100
    t.clock.now += 100
    await t.ok("alice", "pw")
    # Another address was never throttled.
    assert await t.refused("alice", "guess", "10.0.0.2") is Unauthorized


async def _retry_after(t: Login, name: str, password: str) -> int:
    with pytest.raises(TooManyRequests) as caught:
        await t.ok(name, password)
    return int(caught.value.headers["Retry-After"])


async def test_one_address_spraying_many_user_names_is_throttled() -> None:
    t = Login(ThrottleLimits(per_user_address=100, per_address=5, per_user=100))
    for i in range(5):
        assert await t.refused(f"user{i}", "guess") is Unauthorized
    assert await t.refused("user99", "guess") is TooManyRequests
    assert t.verifier.hashes == 5
    assert await t.refused("user99", "guess", "10.0.0.2") is Unauthorized


async def test_many_addresses_against_one_user_do_not_lock_out_the_users_known_address() -> None:
    t = Login(ThrottleLimits(per_user_address=100, per_address=100, per_user=5), cache_ttl=0)
    t.users.set("alice", 1, "pw")
    await t.ok("alice", "pw", "192.0.2.7")  # alice's own machine
    for i in range(5):
        assert await t.refused("alice", "guess", f"203.0.113.{i}") is Unauthorized
    # Any new address now waits for the window, even with the right password...
    assert await t.refused("alice", "pw", "198.51.100.1") is TooManyRequests
    # ...but alice's machine still logs in (the cache is off here: this is the hashing path).
    hashes = t.verifier.hashes
    await t.ok("alice", "pw", "192.0.2.7")
    assert t.verifier.hashes == hashes + 1
    # Its own (user, address) limit still applies to it.
    other = Login(ThrottleLimits(per_user_address=2, per_address=100, per_user=5), cache_ttl=0)
    other.users.set("alice", 1, "pw")
    await other.ok("alice", "pw", "192.0.2.7")
    for _ in range(2):
        assert await other.refused("alice", "guess", "192.0.2.7") is Unauthorized
    assert await other.refused("alice", "pw", "192.0.2.7") is TooManyRequests


async def test_a_success_clears_its_own_counter_but_not_the_address_counter() -> None:
    t = Login(ThrottleLimits(per_user_address=3, per_address=4, per_user=100), cache_ttl=0)
    t.users.set("mallory", 1, "pw")
    for _ in range(2):
        assert await t.refused("mallory", "guess") is Unauthorized
    await t.ok("mallory", "pw")
    for _ in range(2):
        assert await t.refused("mallory", "guess") is Unauthorized  # the pair counter started again
    # Four failures from this address in the window: a valid account did not reset the sprayer's count.
    assert await t.refused("victim", "guess") is TooManyRequests


def test_lru_cache_is_bounded_and_expires() -> None:
    clock = Clock()
    cache: LruCache[str, int] = LruCache(2, 10, clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    clock.now += 10
    assert cache.get("a") is None and len(cache) == 1


def test_lru_cache_with_no_lifetime_keeps_nothing() -> None:
    cache: LruCache[str, int] = LruCache(10, 0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
