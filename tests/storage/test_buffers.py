from __future__ import annotations

import mmap

import pytest

from lfsd.storage.buffers import FLOOR, SMALLEST, BufferPool

MiB = 1024 * 1024


def _pair(pool: BufferPool, object_size: int) -> tuple[mmap.mmap, mmap.mmap]:
    size = pool.size_for(object_size)
    return pool.take(size), pool.take(size)


def test_fitting_sizes_hold_the_whole_object() -> None:
    assert BufferPool.fitting(0) == SMALLEST
    assert BufferPool.fitting(SMALLEST + 1) == 2 * SMALLEST
    assert BufferPool.fitting(5 * MiB) == 8 * MiB


def test_small_objects_get_small_buffers() -> None:
    pool = BufferPool(4 * MiB, 64 * MiB)
    assert pool.size_for(0) == SMALLEST
    assert pool.size_for(100 * 1024) == 128 * 1024
    assert pool.size_for(3 * MiB) == 4 * MiB
    assert pool.size_for(10 * 1024**3) == 4 * MiB


def test_buffers_shrink_under_load_but_not_below_the_floor() -> None:
    pool = BufferPool(4 * MiB, 16 * MiB)
    pairs = [_pair(pool, 1024**3) for _ in range(6)]
    sizes = [len(a) for a, _ in pairs]
    assert sizes[:2] == [4 * MiB, 4 * MiB]
    assert all(size >= FLOOR for size in sizes)
    assert sizes == sorted(sizes, reverse=True)
    # The budget holds except for the floor-sized overflow.
    assert pool.in_use_bytes <= 16 * MiB + 2 * FLOOR * 6
    for a, b in pairs:
        pool.give(a)
        pool.give(b)
    assert pool.in_use_bytes == 0


def test_idle_buffers_are_reused_and_bounded() -> None:
    pool = BufferPool(1 * MiB, 8 * MiB, max_idle_bytes=2 * MiB)
    pairs = [_pair(pool, MiB) for _ in range(3)]
    for a, b in pairs:
        pool.give(a)
        pool.give(b)
    assert pool.idle_bytes == 2 * MiB
    allocated = pool.allocated
    a, b = _pair(pool, MiB)
    assert pool.allocated == allocated and pool.idle_bytes == 0
    assert len(a) == len(b) == MiB


def test_idle_buffers_are_unmapped_when_released_and_the_pool_still_serves() -> None:
    pool = BufferPool(1 * MiB, 8 * MiB)
    a, b = _pair(pool, MiB)
    pool.give(a)
    pool.give(b)
    assert pool.release_idle() == 2 * MiB
    assert pool.idle_bytes == 0 and a.closed and b.closed
    allocated = pool.allocated
    c = pool.take(MiB)  # a new map, not a closed one
    c[:4] = b"data"
    assert pool.allocated == allocated + 1 and not c.closed
    pool.give(c)


def test_a_buffer_whose_view_is_still_alive_is_released_without_breaking_the_pool() -> None:
    """A failed upload's traceback can keep a view of its buffer after the buffer went back to the pool."""
    pool = BufferPool(1 * MiB, 8 * MiB)
    a, b = _pair(pool, MiB)
    view = memoryview(a)[:10]
    pool.give(a)
    pool.give(b)
    assert pool.release_idle() == 2 * MiB
    assert pool.idle_bytes == 0 and b.closed and not a.closed
    view[:4] = b"safe"  # the view still works; the map goes with it
    view.release()
    c, d = _pair(pool, MiB)
    assert not c.closed and not d.closed and c is not a and d is not a


@pytest.mark.parametrize("bad", [1000, 3 * MiB, 1024])
def test_sizes_are_powers_of_two(bad: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        BufferPool(bad, 64 * MiB)
