"""A figure's peak while a block runs (a process tree's RSS, a PSS sum), sampled in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def sampled_peak(read: Callable[[], float], every: float) -> Iterator[list[float]]:
    """``read()`` before the block, every ``every`` seconds while it runs, and after it; the one-item list holds the
    highest value once the block has ended."""
    peak = [read()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            peak[0] = max(peak[0], read())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], read())
