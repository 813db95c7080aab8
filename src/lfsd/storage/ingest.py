"""The one upload pipeline: the only code that reads a body, bounds it, hashes it and decides commit or abort.

Every backend supplies a :class:`Sink` (the local object file, one S3 PUT, an S3 multipart upload, an S3 promotion of
a staged direct upload); the guarantee "never a partial or wrong object" lives here, once (rudolfs keeps it in one
storage wrapper, ``verify.rs``, for the same reason).

Bodies are read into a ring of pooled buffers. While the event loop fills the next buffer, worker threads hash the
previous ones (in order) and the sink writes them (in whatever order and concurrency the sink allows), so receiving,
hashing and writing overlap; a buffer is refilled only when its hash and write are done. The declared size is enforced
as bytes arrive, so an over-long body is refused without reading it all; a failed write ends the upload at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mmap
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeGuard

from lfsd.core.errors import ChecksumMismatch, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource
from lfsd.offload import in_thread, thread_future
from lfsd.storage.buffers import BufferPool


class Sink(Protocol):
    """Where the bytes of one upload go. ``write`` is called for each buffer in body order (the buffer stays untouched
    until the returned awaitable is done); then exactly one of ``commit`` (size and SHA-256 are right) or ``abort``.
    """

    @property
    def buffer_size(self) -> int: ...

    @property
    def buffers(self) -> int:
        """How many buffers the ring holds: one filling, the others hashed and written meanwhile."""

    def write(self, view: memoryview) -> Awaitable[None]: ...

    async def commit(self, sha256: bytes) -> None: ...

    async def abort(self) -> None: ...


class WholeSink(Sink, Protocol):
    """A sink that can take an object held in one buffer in a single blocking call: most LFS objects are small, and
    one worker-thread hop for write + sync + rename costs far less than a hop per step (issue 17)."""

    def store_whole(self, view: memoryview, sha256: bytes) -> None:
        """Blocking: write ``view`` (the whole, verified object) and commit it. ``abort`` still follows a failure."""


class InOrder:
    """Blocking calls that run in worker threads one after another, in the order they were submitted."""

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    def submit(self, fn: Callable[[memoryview], None], view: memoryview) -> asyncio.Future[None]:
        previous = self._last

        async def run() -> None:
            if previous is not None:
                await previous  # a failure before stops the ones after
            await in_thread(fn, view)

        self._last = asyncio.ensure_future(run())
        return self._last


async def ingest(source: ByteSource, size: int, oid: Oid, pool: BufferPool, sink: Sink) -> None:
    """Feed exactly ``size`` bytes from ``source`` to ``sink``; commit if their SHA-256 is ``oid``, else abort.

    Raises ``SizeMismatch`` or ``ChecksumMismatch``; errors from ``source`` and ``sink`` propagate (after the abort).
    """
    if _takes_whole(sink) and size <= sink.buffer_size:
        await _ingest_whole(source, size, oid, pool, sink)
        return
    digest = hashlib.sha256()
    hashing = InOrder()
    body = _Body(source, size)
    ring = [pool.take(sink.buffer_size) for _ in range(max(1, sink.buffers))]
    pending: list[list[asyncio.Future[None]]] = [[] for _ in ring]
    committed = False
    try:
        try:
            index = 0
            while True:
                await _settle(pending[index])  # this buffer is free again
                pending[index] = []
                _raise_failed(pending)
                buffer = ring[index]
                filled = await body.fill(buffer)
                if filled:
                    view = memoryview(buffer)[:filled]
                    pending[index] = [hashing.submit(digest.update, view), asyncio.ensure_future(sink.write(view))]
                if body.ended:
                    break
                index = (index + 1) % len(ring)
            for futures in pending:
                await _settle(futures)
        finally:
            # Failing mid-stream: the threads and the sink must be done with the buffers before anyone reuses them
            # (a worker thread cannot be cancelled; waiting for its future is waiting for the thread).
            outstanding = [future for futures in pending for future in futures]
            if outstanding:
                await asyncio.wait(outstanding)
                for future in outstanding:
                    if not future.cancelled():
                        future.exception()  # retrieved: the first error is the one that propagates
        if body.total != size:
            raise SizeMismatch(f"the request body has {body.total} bytes, the declared size is {size}")
        sha256 = digest.digest()
        if sha256.hex() != oid:
            raise ChecksumMismatch()
        await sink.commit(sha256)
        committed = True
    finally:
        if not committed:
            await asyncio.shield(sink.abort())
        if all(future.done() for futures in pending for future in futures):
            for buffer in ring:
                pool.give(buffer)


def _takes_whole(sink: Sink) -> TypeGuard[WholeSink]:
    # Not a runtime_checkable isinstance: that walks the protocol's members on every call (seen in the profile).
    return callable(getattr(sink, "store_whole", None))


async def _ingest_whole(source: ByteSource, size: int, oid: Oid, pool: BufferPool, sink: WholeSink) -> None:
    """An object that fits one buffer: read it whole (and its end), then hash, check and store it in one
    worker-thread call. Nothing is written unless size and SHA-256 are right."""
    buffer = pool.take(sink.buffer_size)
    committed = False
    view: memoryview | None = None
    try:
        body = _Body(source, size)
        filled = await body.fill(buffer)
        if not body.ended:
            await body.expect_end()  # exactly a buffer's worth (a power-of-two size): any byte more is refused
        if body.total != size:
            raise SizeMismatch(f"the request body has {body.total} bytes, the declared size is {size}")
        view = whole = memoryview(buffer)[:filled]

        def check_and_store() -> None:
            sha256 = hashlib.sha256(whole).digest()
            if sha256.hex() != oid:
                raise ChecksumMismatch()
            sink.store_whole(whole, sha256)

        # Shielded: a worker thread cannot be cancelled, and the buffer must not go back to the pool while it runs.
        storing = thread_future(check_and_store)
        try:
            await asyncio.shield(storing)
        except asyncio.CancelledError:
            await asyncio.wait([storing])
            raise
        committed = True
    finally:
        if not committed:
            await asyncio.shield(sink.abort())
        if view is not None:
            # The worker thread is done with it; a failure's traceback may still reach it, but not the buffer.
            with contextlib.suppress(BufferError):
                view.release()
        pool.give(buffer)


class _Body:
    """A body read into buffers, refusing any byte past the declared size as soon as it arrives."""

    def __init__(self, source: ByteSource, size: int) -> None:
        self._source = source
        self._size = size
        self._leftover = memoryview(b"")
        self.total = 0
        self.ended = False

    async def fill(self, buffer: mmap.mmap) -> int:
        target = memoryview(buffer)
        capacity = len(target)
        filled = 0
        while filled < capacity:
            if not self._leftover:
                chunk = await self._source.read()
                if not chunk:
                    self.ended = True
                    break
                self.total += len(chunk)
                if self.total > self._size:
                    raise SizeMismatch("the request body is longer than the declared size")
                self._leftover = memoryview(chunk)
            # Chunks arrive in whatever sizes the socket gave; copy each into the pooled buffer.
            n = min(len(self._leftover), capacity - filled)
            target[filled : filled + n] = self._leftover[:n]
            self._leftover = self._leftover[n:]
            filled += n
        return filled

    async def expect_end(self) -> None:
        """The body has filled its buffers with all it declared: the next read must be its end."""
        if self._leftover or await self._source.read():
            raise SizeMismatch("the request body is longer than the declared size")
        self.ended = True


async def _settle(futures: list[asyncio.Future[None]]) -> None:
    """Wait for all of ``futures`` (never leaving one running), then raise the first error."""
    if not futures:
        return
    await asyncio.wait(futures)
    for future in futures:
        future.result()


def _raise_failed(pending: list[list[asyncio.Future[None]]]) -> None:
    """A write that failed ends the upload now, not after the whole body has been read."""
    for futures in pending:
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                future.result()


async def nothing_to_write() -> None:
    """For sinks that need no work per buffer (they keep a view of it until commit, or only count it)."""
