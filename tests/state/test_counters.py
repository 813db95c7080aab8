"""One contract for the failed-login counters, run against each: in process, and a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from lfsd.core.errors import ServiceUnavailable
from lfsd.core.throttle import FailureCounter, Window
from lfsd.state.memory import MemoryFailureCounter
from lfsd.state.redis_counter import RedisFailureCounter
from tests.redisserver import RedisSpace, redis_space


@pytest.fixture
def space() -> Iterator[RedisSpace]:
    with redis_space() as space:
        yield space


@pytest.fixture(params=["memory", "redis"])
async def counter(request: pytest.FixtureRequest) -> AsyncIterator[FailureCounter]:
    if request.param == "memory":
        yield MemoryFailureCounter()
        return
    space: RedisSpace = request.getfixturevalue("space")
    client = Redis.from_url(space.url)
    try:
        yield RedisFailureCounter(client, space.prefix)
    finally:
        await client.aclose()


async def test_counts_in_a_window_that_starts_with_the_first(counter: FailureCounter) -> None:
    assert await counter.peek(["a", "b"]) == [Window(0, 0), Window(0, 0)]
    await counter.add(["a", "b"], 60)
    await counter.add(["a"], 60)
    a, b = await counter.peek(["a", "b"])
    assert (a.count, b.count) == (2, 1)
    assert 59 <= a.seconds_left <= 60 and 59 <= b.seconds_left <= 60


async def test_windows_expire_and_are_not_extended(counter: FailureCounter) -> None:
    await counter.add(["a"], 1)
    await asyncio.sleep(0.6)
    await counter.add(["a"], 1)  # a later failure does not move the window's end
    await asyncio.sleep(0.6)
    assert await counter.peek(["a"]) == [Window(0, 0)]


async def test_reset_and_mark(counter: FailureCounter) -> None:
    await counter.add(["a"], 60)
    await counter.reset("a")
    assert await counter.peek(["a"]) == [Window(0, 0)]
    await counter.add(["m"], 60)
    await counter.add(["m"], 60)
    await counter.mark("m", 30)
    (marked,) = await counter.peek(["m"])
    assert marked.count == 1 and 29 <= marked.seconds_left <= 30


async def test_redis_keys_stay_under_the_prefix_and_expire(space: RedisSpace) -> None:
    client = Redis.from_url(space.url)
    try:
        counter = RedisFailureCounter(client, space.prefix)
        await counter.add(["ua:x:y", "a:y"], 60)
        await counter.mark("ok:x:y", 60)
        keys = sorted(space.stored_keys())
        assert keys == sorted(f"{space.prefix}{key}".encode() for key in ("ua:x:y", "a:y", "ok:x:y"))
        for key in keys:
            assert 0 < await client.ttl(key) <= 60  # no key is ever left without an expiry
    finally:
        await client.aclose()


async def test_unreachable_redis_is_503_not_a_crash() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        counter = RedisFailureCounter(client, "lfsd-test:")
        with pytest.raises(ServiceUnavailable):
            await counter.peek(["a"])
        with pytest.raises(ServiceUnavailable):
            await counter.add(["a"], 60)
    finally:
        await client.aclose()


def test_memory_counter_is_bounded() -> None:
    counter = MemoryFailureCounter(max_keys=3)
    for i in range(10):
        asyncio.run(counter.add([f"k{i}"], 60))
    assert asyncio.run(counter.peek(["k9", "k0"])) == [Window(1, 60), Window(0, 0)]
    assert len(counter._windows) == 3
