"""``LocalStore.open_body``: a download's open and size together, on the loop while opens are fast, else in one
worker-thread hop; and its wrappers."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from lfsd.core.errors import NotFound, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.ports import StoredObject
from lfsd.core.service import LfsService
from lfsd.storage.buffers import BufferPool
from lfsd.storage.instrumented import InstrumentedStore
from lfsd.storage.local import SLOW_OPEN_SECONDS, SLOW_OPENS, LocalStore
from tests.core.test_service import NOW, SIGNER, FakeIndex
from tests.delegating_store import DelegatingStore
from tests.storage.test_contract import Source
from tests.support import blob


class Timings:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None:
        self.seen.append((operation, failed))


async def _stored(tmp_path: Path, slow_open_seconds: float = SLOW_OPEN_SECONDS) -> tuple[LocalStore, Oid, bytes]:
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False, slow_open_seconds=slow_open_seconds)
    store.prepare()
    item = blob(70_000)
    oid = Oid.parse(item.oid)
    await store.put(oid, item.size, Source(item.data))
    return store, oid, item.data


async def test_open_body_returns_the_open_file_and_its_size(tmp_path: Path) -> None:
    store, oid, data = await _stored(tmp_path)
    stored = await store.open_body(oid)
    assert stored is not None and stored.file is not None
    try:
        assert stored.size == len(data)
        assert stored.path == store.path_of(oid)
        assert stored.file.read() == data
    finally:
        stored.file.close()


async def _slow(tmp_path: Path) -> tuple[LocalStore, Oid, bytes]:
    """A store whose first opens (on the loop) counted as slow: the next ones hop to a thread."""
    store, oid, data = await _stored(tmp_path, slow_open_seconds=-1.0)
    for _ in range(SLOW_OPENS):
        stored = await store.open_body(oid)
        assert stored is not None and stored.file is not None
        stored.file.close()
    return store, oid, data


@pytest.mark.parametrize("slow", [False, True], ids=["on the loop", "in a thread"])
async def test_open_body_of_a_missing_object_is_none(tmp_path: Path, slow: bool) -> None:
    store, _, _ = await (_slow(tmp_path) if slow else _stored(tmp_path))
    assert await store.open_body(Oid.parse("0" * 64)) is None


@pytest.mark.parametrize("slow", [False, True], ids=["on the loop", "in a thread"])
async def test_an_unreadable_store_is_a_503(tmp_path: Path, slow: bool) -> None:
    store, oid, _ = await (_slow(tmp_path) if slow else _stored(tmp_path))
    path = store.path_of(oid)
    path.unlink()
    path.mkdir()  # a directory where the file should be: open fails with an OSError other than "not found"
    with pytest.raises(ServiceUnavailable):
        await store.open_body(oid)


async def test_fast_opens_stay_on_the_loop_and_slow_ones_send_the_next_to_a_thread(tmp_path: Path) -> None:
    fast, oid, _ = await _stored(tmp_path / "fast", slow_open_seconds=math.inf)  # a loaded machine is not slow
    slow, slow_oid, data = await _slow(tmp_path / "slow")
    loop = asyncio.get_running_loop()
    opening = loop.create_task(fast.open_body(oid))
    await asyncio.sleep(0)  # one step of the task: no thread to wait for, so it is done
    assert opening.done()
    stored = opening.result()
    assert stored is not None and stored.file is not None
    stored.file.close()
    opening = loop.create_task(slow.open_body(slow_oid))
    await asyncio.sleep(0)
    assert not opening.done()  # waiting for the worker thread
    stored = await opening
    assert stored is not None and stored.file is not None and stored.file.read() == data
    stored.file.close()


async def test_slow_opens_not_in_a_row_stay_on_the_loop(tmp_path: Path) -> None:
    store, oid, _ = await _stored(tmp_path, slow_open_seconds=-1.0)  # every open counts as slow
    for _ in range(SLOW_OPENS - 1):
        stored = await store.open_body(oid)
        assert stored is not None and stored.file is not None
        stored.file.close()
    store.slow_open_seconds = math.inf  # one fast open in between
    stored = await store.open_body(oid)
    assert stored is not None and stored.file is not None
    stored.file.close()
    store.slow_open_seconds = -1.0
    loop = asyncio.get_running_loop()
    for _ in range(SLOW_OPENS - 1):
        opening = loop.create_task(store.open_body(oid))
        await asyncio.sleep(0)
        assert opening.done()  # still on the loop
        stored = opening.result()
        assert stored is not None and stored.file is not None
        stored.file.close()


async def test_a_cancelled_open_closes_the_file(tmp_path: Path) -> None:
    store, oid, _ = await _slow(tmp_path)
    original = store.open_body

    async def cancelled_while_opening() -> None:
        task = asyncio.ensure_future(original(oid))
        await asyncio.sleep(0)  # the hop has started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await cancelled_while_opening()
    await asyncio.sleep(0.2)  # the worker thread finishes; its done-callback closes what it opened
    assert str(store.path_of(oid)) not in _open_files()


def _open_files() -> set[str]:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("no /proc here")
    return {str(link.readlink()) for link in fd_dir.iterdir() if link.is_symlink()}


async def test_the_instrumented_wrapper_passes_open_body_through_or_falls_back_to_get(tmp_path: Path) -> None:
    store, oid, data = await _stored(tmp_path)
    timings = Timings()
    direct = await InstrumentedStore(store, "local", timings).open_body(oid)
    assert direct is not None and direct.file is not None
    direct.file.close()
    # A wrapper without open_body (as tests' fault injectors are): the body is looked up, not opened.
    fallback = await InstrumentedStore(DelegatingStore(store), "local", timings).open_body(oid)
    assert fallback == StoredObject(size=len(data), path=store.path_of(oid))
    assert timings.seen == [("get", False), ("get", False)]


async def test_only_open_download_opens_the_file(tmp_path: Path) -> None:
    """HTTP sends the file it was handed; SSH and others ask ``download`` and read through the store: a file opened
    for them would be left open."""
    store, oid, data = await _stored(tmp_path)
    index = FakeIndex(held={1: {oid: len(data)}})
    lfs = LfsService(index, store, SIGNER, lambda: NOW)
    looked_up = await lfs.download(1, oid)
    assert looked_up.file is None and looked_up.size == len(data)
    opened = await lfs.open_download(1, oid)
    assert opened.file is not None
    opened.file.close()
    with pytest.raises(NotFound):
        await lfs.open_download(1, Oid.parse("0" * 64))
