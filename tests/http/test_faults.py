"""A failing store: I/O errors give 503 with Retry-After, a full disk 507, and the server recovers without a restart."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, ObjectStore, StoredObject
from lfsd.storage.local import storage_error
from tests.conftest import AiohttpClient, open_world
from tests.delegating_store import DelegatingStore
from tests.support import World, blob, lfs_error


class FaultyStore(DelegatingStore):
    """Wraps a real store; while ``fault`` is set, every operation fails with that OS error, as a disk would."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.fault: int | None = None

    def _check(self) -> None:
        if self.fault is not None:
            raise storage_error(OSError(self.fault, "injected"))

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        self._check()
        await super().put(oid, size, source)

    async def get(self, oid: Oid) -> StoredObject | None:
        self._check()
        return await super().get(oid)

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        self._check()
        async for chunk in self.inner.read(oid, start, length):
            yield chunk

    async def size_of(self, oid: Oid) -> int | None:
        self._check()
        return await super().size_of(oid)

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        self._check()
        return await super().present(oids)

    async def check(self) -> None:
        self._check()
        await super().check()


@pytest.fixture
async def faulty(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[tuple[World, FaultyStore]]:
    settings = Settings(data_dir=tmp_path / "data", fsync=False, buffer_size=64 * 1024)
    stores: list[FaultyStore] = []

    def wrap(inner: ObjectStore) -> ObjectStore:
        stores.append(FaultyStore(inner))
        return stores[-1]

    world = await open_world(settings, aiohttp_client, wrap_store=wrap)
    yield world, stores[0]
    await world.meta.close()


@pytest.mark.parametrize(("fault", "status"), [(errno.ENOSPC, 507), (errno.EIO, 503), (errno.EROFS, 503)])
async def test_failing_storage_then_recovery(faulty: tuple[World, FaultyStore], fault: int, status: int) -> None:
    world, store = faulty
    stored, item = blob(1000), blob(2000)
    await world.push("acme/game", [stored], world.auth("root"))
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    upload = obj["actions"]["upload"]
    (down,) = await world.batch_ok("acme/game", "download", [stored], world.auth("root"))
    download = down["actions"]["download"]

    store.fault = fault
    response = await world.client.session.put(upload["href"], data=item.data, headers=upload["header"])
    await lfs_error(response, status)
    if status == 503:
        assert response.headers["Retry-After"].isdigit()
    await lfs_error(await world.client.session.get(download["href"], headers=download["header"]), status)
    assert (await world.client.get("/readyz")).status == 503

    store.fault = None  # the disk is back: no restart needed
    assert (await world.client.session.put(upload["href"], data=item.data, headers=upload["header"])).status == 200
    assert await world.fetch("acme/game", item, world.auth("root")) == item.data
    assert (await world.client.get("/readyz")).status == 200
