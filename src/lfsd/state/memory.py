"""In-process implementations: a bounded LRU cache with expiry, and login-failure counters."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from lfsd.core.throttle import Window

K = TypeVar("K")
V = TypeVar("V")

Clock = Callable[[], float]


class LruCache(Generic[K, V]):
    """At most ``max_entries`` entries, each forgotten ``ttl_seconds`` after it was put; 0 seconds caches nothing.

    Only the event loop's thread touches it, so it needs no lock.
    """

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0 or self._max <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class MemoryFailureCounter:
    """Fixed-window counters for one process. Bounded: past ``max_keys`` the oldest windows are dropped first
    (a flood from many addresses then forgets its own oldest failures, never grows memory)."""

    def __init__(self, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (count, expires at)
        self._max = max_keys
        self._clock = clock

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        entry = self._windows.get(key)
        if entry is not None and entry[1] <= now:
            del self._windows[key]
            return None
        return entry

    async def peek(self, keys: Sequence[str]) -> list[Window]:
        now = self._clock()
        out = []
        for key in keys:
            entry = self._live(key, now)
            out.append(Window(0, 0) if entry is None else Window(entry[0], math.ceil(entry[1] - now)))
        return out

    async def add(self, keys: Sequence[str], window_seconds: int) -> None:
        now = self._clock()
        for key in keys:
            entry = self._live(key, now)
            # A window keeps its start: more failures do not extend it (as Redis INCR + EXPIRE on the first).
            self._windows[key] = (1, now + window_seconds) if entry is None else (entry[0] + 1, entry[1])
            self._windows.move_to_end(key)
        self._trim()

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def mark(self, key: str, seconds: int) -> None:
        self._windows[key] = (1, self._clock() + seconds)
        self._windows.move_to_end(key)
        self._trim()

    def _trim(self) -> None:
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
