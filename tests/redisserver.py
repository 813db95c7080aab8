"""The local Redis (127.0.0.1:6379) for the tests: each test gets a key prefix of its own and its keys removed after.

Where Redis is not reachable the cases are skipped, except in CI (``CI=true``), where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import pytest
import redis

URL: Final = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str

    def stored_keys(self) -> list[bytes]:
        with redis.Redis.from_url(self.url) as client:
            return list(client.scan_iter(match=self.prefix + "*"))


@contextmanager
def redis_space() -> Iterator[RedisSpace]:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            pass
    except OSError:
        reason = "Redis is not reachable on 127.0.0.1:6379"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI requires it")
        pytest.skip(reason)
    space = RedisSpace(URL, f"lfsd-test:{os.getpid()}:{secrets.token_hex(4)}:")
    try:
        yield space
    finally:
        with redis.Redis.from_url(space.url) as client:
            stale = list(client.scan_iter(match=space.prefix + "*"))
            if stale:
                client.delete(*stale)
