"""A pool of reusable transfer buffers, so that memory does not grow with object size or request count."""

from __future__ import annotations


class BufferPool:
    """Hands out fixed-size ``bytearray`` buffers and keeps up to ``max_idle`` returned ones for reuse.

    Like Go's ``sync.Pool`` feeding ``io.CopyBuffer``: each transfer borrows a fixed number of buffers.
    """

    def __init__(self, buffer_size: int, max_idle: int) -> None:
        if buffer_size <= 0:
            raise ValueError("buffer_size must be positive")
        self.buffer_size = buffer_size
        self._max_idle = max_idle
        self._idle: list[bytearray] = []
        self.allocated = 0

    def take(self) -> bytearray:
        if self._idle:
            return self._idle.pop()
        self.allocated += 1
        return bytearray(self.buffer_size)

    def give(self, buffer: bytearray) -> None:
        if len(buffer) == self.buffer_size and len(self._idle) < self._max_idle:
            self._idle.append(buffer)

    @property
    def idle(self) -> int:
        return len(self._idle)
