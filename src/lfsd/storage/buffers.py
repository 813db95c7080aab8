"""A pool of reusable transfer buffers, so that memory does not grow with object size or request count."""

from __future__ import annotations

import mmap

PAGE = mmap.PAGESIZE


class BufferPool:
    """Hands out fixed-size, page-aligned buffers and keeps up to ``max_idle`` returned ones for reuse.

    Like Go's ``sync.Pool`` feeding ``io.CopyBuffer``: each transfer borrows a fixed number of buffers. Buffers are
    anonymous memory maps, so they are page-aligned, as ``O_DIRECT`` writes require.
    """

    def __init__(self, buffer_size: int, max_idle: int) -> None:
        if buffer_size <= 0 or buffer_size % PAGE:
            raise ValueError(f"buffer_size must be a positive multiple of {PAGE}")
        self.buffer_size = buffer_size
        self._max_idle = max_idle
        self._idle: list[mmap.mmap] = []
        self.allocated = 0

    def take(self) -> mmap.mmap:
        if self._idle:
            return self._idle.pop()
        self.allocated += 1
        return mmap.mmap(-1, self.buffer_size)

    def give(self, buffer: mmap.mmap) -> None:
        if len(buffer) == self.buffer_size and len(self._idle) < self._max_idle:
            self._idle.append(buffer)

    @property
    def idle(self) -> int:
        return len(self._idle)
