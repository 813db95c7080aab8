from __future__ import annotations

import asyncio
import errno
import gc
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest

from lfsd.core.errors import ChecksumMismatch, ServiceUnavailable, SizeMismatch
from lfsd.core.oid import Oid
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore
from tests.storage.test_contract import Source
from tests.support import blob

P = ParamSpec("P")
T = TypeVar("T")


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


async def test_an_object_stored_already_is_written_again_not_skipped(tmp_path: Path) -> None:
    """Skipping the write for a stored oid would answer faster, proving that some repository holds it."""
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False)
    store.prepare()
    for item in (blob(50_000), blob(65536 * 3 + 5)):  # one buffer (stored whole), several buffers
        oid = Oid.parse(item.oid)
        await store.put(oid, item.size, Source(item.data))
        first = store.path_of(oid).stat().st_ino
        await store.put(oid, item.size, Source(item.data))
        assert store.path_of(oid).stat().st_ino != first  # a new file, renamed over the old one
        assert store.path_of(oid).read_bytes() == item.data
    assert list((tmp_path / "tmp").iterdir()) == []


class _CountingExecutor(ThreadPoolExecutor):
    submitted = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


async def test_a_small_upload_is_hashed_written_synced_and_renamed_in_one_thread_hop(tmp_path: Path) -> None:
    """Issue 17: a thread hand-off per step cost more than the steps for small objects."""
    store = LocalStore(tmp_path, BufferPool(1 << 20, 1 << 24), fsync=True)
    store.prepare()
    executor = _CountingExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(executor)
    item = blob(100 * 1024)
    await store.put(Oid.parse(item.oid), item.size, Source(item.data))
    assert executor.submitted == 1
    assert store.path_of(Oid.parse(item.oid)).read_bytes() == item.data
    # A wrong body is refused in that same hop, before anything is written.
    with pytest.raises(ChecksumMismatch):
        await store.put(Oid.parse(blob(10).oid), item.size, Source(item.data))
    assert executor.submitted == 2
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("size", [128 * 1024, 128 * 1024 - 1])
async def test_an_upload_filling_one_buffer_exactly_is_one_thread_hop_too(tmp_path: Path, size: int) -> None:
    """A power-of-two size fills its buffer without room to see the end: the end is read before the one hop."""
    store = LocalStore(tmp_path, BufferPool(1 << 20, 1 << 24), fsync=True)
    store.prepare()
    executor = _CountingExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(executor)
    item = blob(size)
    await store.put(Oid.parse(item.oid), item.size, Source(item.data, chunk=32 * 1024))
    assert executor.submitted == 1
    assert store.path_of(Oid.parse(item.oid)).read_bytes() == item.data
    longer = blob(size + 1)
    with pytest.raises(SizeMismatch):
        await store.put(Oid.parse(longer.oid), size, Source(longer.data, chunk=32 * 1024))
    assert executor.submitted == 1  # refused before any hop
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("unnamed", [True, False])
async def test_uploads_use_unnamed_files_where_the_file_system_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    real = os.open
    opened: list[int] = []

    def recording(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        opened.append(flags)
        return real(path, flags, mode, dir_fd=dir_fd)

    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False, unnamed_files=unnamed)
    store.prepare()
    monkeypatch.setattr(os, "open", recording)
    for item in (blob(50_000), blob(65536 * 3 + 5)):  # stored whole, streamed
        await store.put(Oid.parse(item.oid), item.size, Source(item.data))
        assert store.path_of(Oid.parse(item.oid)).read_bytes() == item.data
    unnamed_opens = [flags for flags in opened if flags & os.O_TMPFILE == os.O_TMPFILE]
    named_creates = [flags for flags in opened if flags & os.O_CREAT and flags & os.O_TMPFILE != os.O_TMPFILE]
    assert (bool(unnamed_opens), len(named_creates)) == ((True, 0) if unnamed else (False, 2))
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_an_upload_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    """Nothing named, nowhere: the unnamed file goes with its descriptor (also when the process dies)."""
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=True)
    store.prepare()
    item = blob(65536 * 4)
    with pytest.raises(ConnectionResetError):
        await store.put(Oid.parse(item.oid), item.size, Source(item.data, fail_after=65536 * 2 + 100))
    assert _files(tmp_path) == []


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if not path.is_dir()]


async def test_present_now_answers_as_present_does_without_a_thread_hop(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False)
    store.prepare()
    body = blob(1000)
    oid = Oid.parse(body.oid)
    await store.put(oid, body.size, Source(body.data))
    absent = Oid.parse("0" * 64)
    (tmp_path / "objects" / "00").write_bytes(b"")  # a file where a shard directory would be: not there either
    assert store.present_now([oid, absent]) == {oid}
    assert await store.present([oid, absent]) == {oid}
    assert store.presence_now() == store.present_now  # a local disk: the link transaction may stat inline


def test_a_store_on_a_network_file_system_offers_no_blocking_presence_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stat there can hang for as long as the server is away: it must not hold SQLite's only thread."""
    monkeypatch.setattr("lfsd.storage.local.may_hang", lambda path: True)
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False)
    store.prepare()
    assert store.presence_now() is None


def test_present_now_raises_a_failing_disk_instead_of_answering_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path, BufferPool(65536, 1 << 20), fsync=False)
    store.prepare()

    def failing(path: object) -> os.stat_result:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("lfsd.storage.local.os.stat", failing)
    with pytest.raises(ServiceUnavailable):
        store.present_now([Oid.parse("a" * 64)])


async def test_a_failed_uploads_buffer_can_be_unmapped_when_idle_buffers_are_released(tmp_path: Path) -> None:
    """The failure's traceback outlives the upload (until the garbage collector runs, here never): it must not keep
    the pooled buffer exported, or the idle release could not unmap it."""
    pool = BufferPool(65536, 1 << 20)
    store = LocalStore(tmp_path, pool, fsync=False)
    store.prepare()
    body = blob(1000)
    gc.disable()  # type: ignore[attr-defined]  # mypy takes bench/gc.py for this module (it runs over bench/)
    try:
        with pytest.raises(ChecksumMismatch) as failed:
            await store.put(Oid.parse("0" * 64), body.size, Source(body.data))
        idle = [buffer for buffers in pool._idle.values() for buffer in buffers]
        assert idle and failed.value.__traceback__ is not None
        assert pool.release_idle() > 0
        assert all(buffer.closed for buffer in idle)
    finally:
        gc.enable()  # type: ignore[attr-defined]
    await store.put(Oid.parse(body.oid), body.size, Source(body.data))
    assert store.present_now([Oid.parse(body.oid)]) == {Oid.parse(body.oid)}
