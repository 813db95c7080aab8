"""Giving freed heap memory back to the operating system.

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
