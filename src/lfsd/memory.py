"""Giving freed heap memory back to the operating system, and keeping the heap for the transfers in between.

glibc keeps freed memory in its heaps (one per thread that allocated) instead of returning it, so after a burst of
concurrent transfers the resident size would stay at its peak. ``malloc_trim`` hands the free pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import cast


def load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on a C library without it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 8 * 1024 * 1024


def tune_malloc() -> bool:
    """Serve allocations up to ``MMAP_THRESHOLD`` from the heap and keep up to ``TRIM_THRESHOLD`` of freed heap top;
    False where the C library has no ``mallopt`` (not glibc).

    asyncio reads a socket 256 KiB at a time into a new bytes object. glibc maps each such allocation on its own,
    and a read that returns less is shrunk in place, so its dynamic threshold never rises above it: every read was
    a fresh map, faulted in page by page and unmapped again, about 1 s of kernel time per GiB uploaded (issue 17).
    From the heap, the same memory is reused read after read. What a burst leaves free is returned by the trim when
    the server goes quiet (``MemoryReleaser``, run by ``InFlight``); larger allocations are still mapped alone."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library: no ``find_library`` child process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # The trim threshold first: setting either one turns glibc's dynamic adjustment of both off.
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class MemoryReleaser:
    """Calls ``malloc_trim(0)`` (blocking: a few milliseconds on a large heap; call it from a worker thread)."""

    def __init__(self) -> None:
        # Looked up on the first release, not here: ``find_library`` runs ``ldconfig -p`` in a child process
        # (20-40 ms), which every short-lived process (CLI, SSH shell) would pay without ever trimming.
        self._trim: Callable[[int], int] | None = None
        self._loaded = False

    def release(self) -> None:
        if not self._loaded:
            self._trim = load_malloc_trim()
            self._loaded = True
        if self._trim is not None:
            self._trim(0)
