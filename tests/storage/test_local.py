from __future__ import annotations

import os
import time
from pathlib import Path

from lfsd.core.oid import Oid
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore
from tests.storage.test_contract import Source
from tests.support import blob


def test_layout_is_content_addressed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20))
    oid = Oid.parse("ab" + "cd" + "e" * 60)
    assert store.path_of(oid) == tmp_path / "objects" / "ab" / "cd" / oid


def test_sweep_removes_dead_process_and_stale_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20))
    store.prepare()
    tmp = tmp_path / "tmp"
    host = store._host
    dead = tmp / f"{'a' * 64}.{host}.999999999.abc.tmp"
    alive = tmp / f"{'b' * 64}.{host}.{os.getpid()}.abc.tmp"
    other_host_fresh = tmp / f"{'c' * 64}.elsewhere.1.abc.tmp"
    other_host_stale = tmp / f"{'d' * 64}.elsewhere.1.abc.tmp"
    for path in (dead, alive, other_host_fresh, other_host_stale):
        path.write_bytes(b"partial")
    old = time.time() - 2 * 24 * 3600
    os.utime(other_host_stale, (old, old))
    assert store.sweep_temp() == 2
    assert sorted(p.name for p in tmp.iterdir()) == sorted([alive.name, other_host_fresh.name])


async def test_buffers_are_reused_not_grown(tmp_path: Path) -> None:
    pool = BufferPool(65536, 1 << 20)
    store = LocalStore(tmp_path, pool, fsync=False)
    store.prepare()
    for _ in range(5):
        item = blob(65536 * 5 + 1)
        await store.put(Oid.parse(item.oid), item.size, Source(item.data))
    assert pool.allocated == 2


class _WatchingSource:
    """A body that records, once it has been read to the end, whether the store was writing a temp file for it."""

    def __init__(self, data: bytes, tmp: Path) -> None:
        self._chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        self._tmp = tmp
        self.writing: bool | None = None

    async def read(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        self.writing = any(self._tmp.iterdir())
        return b""


async def test_an_object_stored_already_is_written_again_not_skipped(tmp_path: Path) -> None:
    """Skipping the write for a stored oid would answer faster, proving that some repository holds it."""
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False)
    store.prepare()
    item = blob(50_000)
    oid = Oid.parse(item.oid)
    for _ in range(2):
        source = _WatchingSource(item.data, tmp_path / "tmp")
        await store.put(oid, item.size, source)
        assert source.writing is True
    assert store.path_of(oid).read_bytes() == item.data
    assert list((tmp_path / "tmp").iterdir()) == []
