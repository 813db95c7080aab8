"""A store wrapper that forwards everything: tests subclass it to inject a fault, a delay or a race."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, ObjectStore, StoredObject


class DelegatingStore:
    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        await self.inner.put(oid, size, source)

    async def get(self, oid: Oid) -> StoredObject | None:
        return await self.inner.get(oid)

    def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        return self.inner.read(oid, start, length)

    async def size_of(self, oid: Oid) -> int | None:
        return await self.inner.size_of(oid)

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        return await self.inner.present(oids)

    async def check(self) -> None:
        await self.inner.check()
