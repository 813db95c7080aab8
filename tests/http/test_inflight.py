from __future__ import annotations

import asyncio

from lfsd.http.inflight import InFlight
from lfsd.memory import MemoryReleaser


class CountingReleaser(MemoryReleaser):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def release(self) -> None:
        self.calls += 1
        super().release()


async def test_memory_is_released_once_after_the_last_upload() -> None:
    memory = CountingReleaser()
    inflight = InFlight(memory, trim_delay=0.05)
    async with inflight.upload():
        async with inflight.upload():
            assert inflight.uploads == 2
        await asyncio.sleep(0.1)
        assert memory.calls == 0  # one upload still running
    async with inflight.upload():
        pass  # back-to-back uploads push the trim further out
    assert inflight.uploads == 0
    await asyncio.sleep(0.2)
    assert memory.calls == 1
    await inflight.close()
