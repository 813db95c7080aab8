"""Password logins over HTTP: throttled per user and address (429 + Retry-After), on a bounded pool (503), shared
across replicas through Redis, and remembered only while the password and the user stand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Network
from typing import Any, TypedDict, Unpack

import pytest

from lfsd.app import build_app
from lfsd.config import Settings, SettingsArgs
from tests.conftest import AiohttpClient, open_world
from tests.redisserver import RedisSpace, redis_space
from tests.support import World, basic, lfs_error


class Limits(TypedDict):
    """The login limits these tests set; exactly these keys, so they unpack beside other settings."""

    login_failures_per_user_address: int
    login_failures_per_address: int
    login_failures_per_user: int


LIMITS: Limits = {
    "login_failures_per_user_address": 3,
    "login_failures_per_address": 6,
    "login_failures_per_user": 5,
}
LOCAL = (IPv4Network("127.0.0.1/32"),)


async def _world(settings: Settings, aiohttp_client: AiohttpClient, **update: Unpack[SettingsArgs]) -> World:
    world = await open_world(settings.replace(**update), aiohttp_client)
    await world.user("alice", password="correct horse")
    return world


@pytest.fixture
async def guarded(settings: Settings, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    """Small limits; the test client's 127.0.0.1 is a trusted proxy, so X-Forwarded-For picks the address."""
    world = await _world(settings, aiohttp_client, trusted_proxies=LOCAL, **LIMITS)
    yield world
    await world.meta.close()


def _from(address: str, password: str, name: str = "alice") -> dict[str, str]:
    return {**basic(name, password), "X-Forwarded-For": address}


async def _status(world: World, headers: dict[str, str], client: Any = None) -> int:
    response = await (client or world.client).post(
        "/acme/game.git/info/lfs/locks/verify",
        json={},
        headers={"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json", **headers},
    )
    if response.status in (401, 429, 503):
        await lfs_error(response, response.status)
    else:
        await response.read()
    return response.status


async def test_failed_logins_are_throttled_with_retry_after(guarded: World) -> None:
    for _ in range(3):
        assert await _status(guarded, _from("198.51.100.1", "guess")) == 401
    response = await guarded.batch("acme/game", "download", [], _from("198.51.100.1", "correct horse"))
    body = await lfs_error(response, 429)
    assert "try again later" in body["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 300
    # Tokens are never throttled, even for the same user from the same address.
    await guarded.user("bob")
    assert await _status(guarded, {**guarded.auth("alice"), "X-Forwarded-For": "198.51.100.1"}) == 404
    # Another address is not this one.
    assert await _status(guarded, _from("198.51.100.2", "correct horse")) == 404


async def test_an_attacker_cannot_lock_a_user_out_of_their_own_address(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    # Without the credential cache: a remembered password would pass without reaching the throttle at all.
    guarded = await _world(settings, aiohttp_client, trusted_proxies=LOCAL, credential_cache_ttl=0, **LIMITS)
    try:
        assert await _status(guarded, _from("192.0.2.7", "correct horse")) == 404  # her machine; no grant: 404
        for i in range(5):
            assert await _status(guarded, _from(f"203.0.113.{i}", "guess")) == 401
        assert await _status(guarded, _from("198.51.100.9", "correct horse")) == 429
        assert await _status(guarded, _from("192.0.2.7", "correct horse")) == 404
    finally:
        await guarded.meta.close()


async def test_the_client_is_the_first_untrusted_hop_from_the_right(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    proxies = (*LOCAL, IPv4Network("10.0.0.0/8"))
    world = await _world(settings, aiohttp_client, trusted_proxies=proxies, **LIMITS)
    try:
        # The client wrote a different address each time; the proxies appended what they saw: 198.51.100.1.
        for i in range(3):
            assert await _status(world, _from(f"192.0.2.{i}, 198.51.100.1, 10.1.2.3", "guess")) == 401
        assert await _status(world, _from("192.0.2.99, 198.51.100.1, 10.1.2.3", "correct horse")) == 429
        assert await _status(world, _from("198.51.100.2, 10.1.2.3", "correct horse")) == 404
    finally:
        await world.meta.close()


async def test_forwarded_for_is_ignored_from_untrusted_peers(settings: Settings, aiohttp_client: AiohttpClient) -> None:
    world = await _world(settings, aiohttp_client, **LIMITS)
    try:
        for i in range(3):
            assert await _status(world, _from(f"203.0.113.{i}", "guess")) == 401
        # Every attempt came from 127.0.0.1, whatever the header said.
        assert await _status(world, _from("203.0.113.99", "correct horse")) == 429
    finally:
        await world.meta.close()


async def test_a_password_flood_is_refused_quickly_and_tokens_go_on(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    world = await _world(
        settings,
        aiohttp_client,
        password_threads=1,
        password_queue=0,
        login_failures_per_user_address=1000,
        login_failures_per_address=1000,
        login_failures_per_user=1000,
    )
    try:
        await world.user("bob")
        flood = [_status(world, basic("alice", f"guess {i}")) for i in range(30)]
        statuses = await asyncio.gather(*flood, _status(world, world.auth("bob")))
        assert statuses[-1] == 404  # the token's request: authenticated, no grant on the repository
        assert set(statuses[:-1]) <= {401, 503}
        assert 503 in statuses[:-1], "no password check was refused: the pool queued them all"
    finally:
        await world.meta.close()


async def test_remembered_passwords_are_forgotten_when_changed_or_disabled(guarded: World) -> None:
    assert await _status(guarded, basic("alice", "correct horse")) == 404
    await guarded.meta.users.set_password("alice", "battery staple")
    assert await _status(guarded, basic("alice", "correct horse")) == 401
    assert await _status(guarded, basic("alice", "battery staple")) == 404
    await guarded.meta.users.set_disabled("alice", True)
    assert await _status(guarded, basic("alice", "battery staple")) == 401


@pytest.fixture
def space() -> Iterator[RedisSpace]:
    with redis_space() as space:
        yield space


async def test_replicas_sharing_redis_see_one_count(
    settings: Settings, aiohttp_client: AiohttpClient, space: RedisSpace
) -> None:
    shared = settings.replace(redis_url=space.url, redis_key_prefix=space.prefix, **LIMITS)
    world = await _world(shared, aiohttp_client)
    try:
        other = await aiohttp_client(build_app(shared))
        assert await _status(world, basic("alice", "guess")) == 401
        assert await _status(world, basic("alice", "guess"), other) == 401
        assert await _status(world, basic("alice", "guess")) == 401
        assert await _status(world, basic("alice", "correct horse"), other) == 429
        assert space.stored_keys(), "the counters are not in Redis"
    finally:
        await world.meta.close()
    assert all(key.startswith(space.prefix.encode()) for key in space.stored_keys())


async def test_without_redis_each_process_counts_alone(settings: Settings, aiohttp_client: AiohttpClient) -> None:
    local = settings.replace(**LIMITS)
    world = await _world(local, aiohttp_client)
    try:
        other = await aiohttp_client(build_app(local))
        for _ in range(3):
            assert await _status(world, basic("alice", "guess")) == 401
        assert await _status(world, basic("alice", "correct horse")) == 429
        assert await _status(world, basic("alice", "correct horse"), other) == 404
    finally:
        await world.meta.close()
