"""Streaming ingest: read a body into pooled buffers while a worker thread hashes and writes the previous one.

Double buffering keeps the event loop receiving while SHA-256 and the write (both release the GIL) run in a
thread. The declared size is enforced as bytes arrive, so an over-long body is refused without reading it all.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from lfsd.core.errors import ChecksumMismatch, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource
from lfsd.offload import in_thread
from lfsd.storage.buffers import BufferPool

Sink = Callable[[memoryview], None]


async def ingest(source: ByteSource, size: int, oid: Oid, pool: BufferPool, sink: Sink) -> None:
    """Feed exactly ``size`` bytes from ``source`` to ``sink`` (in a thread) and check their SHA-256 is ``oid``.

    Raises ``SizeMismatch`` or ``ChecksumMismatch``; errors from ``source`` and ``sink`` propagate. The caller
    commits what ``sink`` wrote only if this returns normally.
    """
    digest = hashlib.sha256()

    def consume(view: memoryview) -> None:
        digest.update(view)
        sink(view)

    buffers = (pool.take(), pool.take())
    pending: asyncio.Future[None] | None = None
    total = 0
    index = 0
    leftover = memoryview(b"")
    try:
        while True:
            buffer = buffers[index]
            capacity = len(buffer)
            filled = 0
            at_end = False
            while filled < capacity:
                if not leftover:
                    chunk = await source.read()
                    if not chunk:
                        at_end = True
                        break
                    total += len(chunk)
                    if total > size:
                        raise SizeMismatch("the request body is longer than the declared size")
                    leftover = memoryview(chunk)
                # Chunks arrive in whatever sizes the socket gave; copy each into the pooled buffer.
                n = min(len(leftover), capacity - filled)
                buffer[filled : filled + n] = leftover[:n]
                leftover = leftover[n:]
                filled += n
            if pending is not None:
                await pending
                pending = None
            if filled:
                pending = asyncio.ensure_future(in_thread(consume, memoryview(buffer)[:filled]))
            if at_end:
                break
            index ^= 1
        if pending is not None:
            await pending
            pending = None
    finally:
        if pending is not None:
            # Failing mid-stream: let the worker finish with its buffer before the caller discards the sink.
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: the first error is the one that propagates
        for buffer in buffers:
            pool.give(buffer)
    if total != size:
        raise SizeMismatch(f"the request body has {total} bytes, the declared size is {size}")
    if digest.hexdigest() != oid:
        raise ChecksumMismatch()
