"""An ObjectStore wrapper that times every operation and counts failures, by backend and operation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Protocol

from lfsd.core.errors import LfsError
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, ObjectStore, StoredObject, opens_files


class StorageObserver(Protocol):
    def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None: ...


class InstrumentedStore:
    """Wraps any store. Client-side failures (a bad hash or size, a client gone) are not storage errors."""

    def __init__(self, inner: ObjectStore, backend: str, observer: StorageObserver) -> None:
        self._inner = inner
        self._backend = backend
        self._observer = observer

    @asynccontextmanager
    async def _timed(self, operation: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        failed = False
        try:
            yield
        except LfsError as exc:
            failed = exc.status >= 500
            raise
        except Exception:
            failed = True
            raise
        finally:
            self._observer.observe(self._backend, operation, time.perf_counter() - started, failed=failed)

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        async with self._timed("put"):
            await self._inner.put(oid, size, source)

    async def get(self, oid: Oid) -> StoredObject | None:
        async with self._timed("get"):
            return await self._inner.get(oid)

    async def open_body(self, oid: Oid) -> StoredObject | None:
        """``FileStore.open_body`` of the inner store, timed as a ``get``; a store (or wrapper) without it is
        asked ``get``, and its file is opened by the caller as before."""
        async with self._timed("get"):
            if opens_files(self._inner):
                return await self._inner.open_body(oid)
            return await self._inner.get(oid)

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        async with self._timed("read"):
            async for chunk in self._inner.read(oid, start, length):
                yield chunk

    async def size_of(self, oid: Oid) -> int | None:
        async with self._timed("size"):
            return await self._inner.size_of(oid)

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        async with self._timed("present"):
            return await self._inner.present(oids)

    async def check(self) -> None:
        async with self._timed("check"):
            await self._inner.check()
