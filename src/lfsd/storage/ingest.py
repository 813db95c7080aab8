"""Streaming ingest: read a body into pooled buffers while worker threads hash and write the previous one.

Double buffering keeps the event loop receiving while SHA-256 and the write (both release the GIL) run in two
worker threads side by side. The declared size is enforced as bytes arrive, so an over-long body is refused
without reading it all.
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
    """Feed exactly ``size`` bytes from ``source`` to ``sink`` (in a thread); check their SHA-256 is ``oid``.

    Raises ``SizeMismatch`` or ``ChecksumMismatch``; errors from ``source`` and ``sink`` propagate. The caller
    commits what ``sink`` wrote only if this returns normally.
    """
    digest = hashlib.sha256()
    buffers = pool.take_pair(size)
    # Hashing and writing only read a buffer, so they run side by side; each stays in order because the next
    # buffer is handed over only after both finished with the previous one.
    pending: list[asyncio.Future[None]] = []
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
            await _settle(pending)
            pending = []
            if filled:
                view = memoryview(buffer)[:filled]
                pending = [
                    asyncio.ensure_future(in_thread(digest.update, view)),
                    asyncio.ensure_future(in_thread(sink, view)),
                ]
            if at_end:
                break
            index ^= 1
        await _settle(pending)
        pending = []
    finally:
        if pending:
            # Failing mid-stream: the workers must be done with the buffers (and the sink) before anyone reuses
            # them. The futures are not cancelled by our cancellation, so waiting for them is waiting for the threads.
            await asyncio.wait(pending)
            for future in pending:
                if not future.cancelled():
                    future.exception()  # retrieved: the first error is the one that propagates
        if all(future.done() for future in pending):
            for buffer in buffers:
                pool.give(buffer)
    if total != size:
        raise SizeMismatch(f"the request body has {total} bytes, the declared size is {size}")
    if digest.hexdigest() != oid:
        raise ChecksumMismatch()


async def _settle(futures: list[asyncio.Future[None]]) -> None:
    """Wait for all of ``futures`` (never leaving one running), then raise the first error."""
    if not futures:
        return
    await asyncio.wait(futures)
    for future in futures:
        future.result()
