"""Login-failure counters in Redis, so that every replica behind a load balancer sees one count.

Each operation is one round trip; counting is a Lua script, so a counter and its expiry are set together (a counter
without an expiry would lock a user out for good). Keys live under the configured prefix. Redis errors become
``ServiceUnavailable`` here: password logins answer 503 while Redis is down rather than go unthrottled, and tokens,
which are never throttled, keep working.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lfsd.core.errors import ServiceUnavailable
from lfsd.core.throttle import Window

_PEEK = """
local out = {}
for _, key in ipairs(KEYS) do
  out[#out + 1] = tonumber(redis.call('GET', key)) or 0
  out[#out + 1] = redis.call('PTTL', key)
end
return out
"""

_ADD = """
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 0
"""


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError:
        raise ServiceUnavailable("the login throttle is unavailable") from None


class RedisFailureCounter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._peek = client.register_script(_PEEK)
        self._add = client.register_script(_ADD)

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [self._prefix + key for key in keys]

    async def peek(self, keys: Sequence[str]) -> list[Window]:
        with redis_errors():
            flat = await self._peek(keys=self._keys(keys))
        out = []
        for count, pttl in zip(flat[::2], flat[1::2], strict=True):
            out.append(Window(int(count), math.ceil(int(pttl) / 1000) if int(pttl) > 0 else 0))
        return out

    async def add(self, keys: Sequence[str], window_seconds: int) -> None:
        with redis_errors():
            await self._add(keys=self._keys(keys), args=[window_seconds])

    async def reset(self, key: str) -> None:
        with redis_errors():
            await self._client.delete(self._prefix + key)

    async def mark(self, key: str, seconds: int) -> None:
        with redis_errors():
            await self._client.set(self._prefix + key, 1, ex=seconds)
