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


async def test_the_trim_waits_for_the_delay_after_the_last_of_a_run_of_uploads() -> None:
    """One timer for the run: when it fires early (uploads ended since it was set) it waits out the rest."""
    memory = CountingReleaser()
    inflight = InFlight(memory, trim_delay=0.05)
    for _ in range(8):  # 0.16 s of uploads, each ending 0.02 s after the one before: never 0.05 s idle
        with inflight.upload():
            assert inflight.uploads == 1
        await asyncio.sleep(0.02)
        assert memory.calls == 0
    await asyncio.sleep(0.1)
    assert memory.calls == 1
    await inflight.close()


async def test_a_freed_slot_goes_to_the_first_waiter_and_the_cap_always_holds() -> None:
    inflight = InFlight(MemoryReleaser())
    first = inflight.admit("u", 1)
    order: list[str] = []

    async def waiting(name: str) -> None:
        with await inflight.admit_waiting("u", 1, wait=5):
            order.append(name)
            assert inflight._per_user["u"] == 1
            await asyncio.sleep(0.01)

    queued = [asyncio.create_task(waiting(name)) for name in ("a", "b")]
    await asyncio.sleep(0.01)
    first.release()
    # A newcomer arriving as the slot passes on waits behind the queue, it does not take the slot.
    late = asyncio.create_task(waiting("late"))
    await asyncio.gather(*queued, late)
    assert order == ["a", "b", "late"]
    assert inflight._per_user == {} and inflight._waiting == {}


async def test_a_cancelled_waiter_leaves_the_queue_without_losing_a_slot() -> None:
    inflight = InFlight(MemoryReleaser())
    held = inflight.admit("u", 1)
    waiter = asyncio.create_task(inflight.admit_waiting("u", 1, wait=5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    held.release()
    assert inflight._per_user == {} and inflight._waiting == {}
    inflight.admit("u", 1).release()


async def test_what_is_kept_for_the_next_transfers_is_freed_before_the_trim_and_a_failure_does_not_stop_it() -> None:
    memory = CountingReleaser()
    freed: list[int] = []

    async def before_trim() -> None:
        freed.append(memory.calls)  # before the trim, which then hands it back
        if len(freed) == 2:
            raise RuntimeError("database down")

    inflight = InFlight(memory, trim_delay=0.05, before_trim=before_trim)
    for expected_calls in (1, 2):
        with inflight.upload():
            pass
        await asyncio.sleep(0.15)
        assert memory.calls == expected_calls
    assert freed == [0, 1]
    await inflight.close()


async def test_no_trim_is_armed_once_closed() -> None:
    """An SSH session's upload can end after the server closed its resources: nothing may run after that."""
    memory = CountingReleaser()
    inflight = InFlight(memory, trim_delay=0.01)
    await inflight.close()
    with inflight.upload():
        pass
    await asyncio.sleep(0.05)
    assert memory.calls == 0


async def test_a_burst_of_downloads_is_trimmed_after_too_but_not_while_an_upload_runs() -> None:
    memory = CountingReleaser()
    inflight = InFlight(memory, trim_delay=0.05)
    with inflight.upload():
        for _ in range(3):
            with inflight.download():
                pass
        await asyncio.sleep(0.1)
        assert memory.calls == 0  # the upload still runs
    await asyncio.sleep(0.1)
    assert memory.calls == 1
    with inflight.download():
        pass
    await asyncio.sleep(0.1)
    assert memory.calls == 2
    await inflight.close()
