"""Object bodies on local disk: ``objects/ab/cd/<oid>``, written to an unnamed file (``O_TMPFILE``) or a temp file,
synced, then linked or renamed into place (``ObjectFile``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from lfsd.core.errors import InsufficientStorage, LfsError, ServiceUnavailable
from lfsd.core.inventory import StoredBody
from lfsd.core.oid import Oid
from lfsd.core.ports import BlockingPresence, ByteSource, StoredObject
from lfsd.core.text import ascii_number
from lfsd.offload import in_thread
from lfsd.storage.buffers import BufferPool
from lfsd.storage.ingest import InOrder, ingest
from lfsd.storage.mounts import may_hang
from lfsd.storage.objectfile import ObjectFile, links_unnamed_files

log = logging.getLogger("lfsd.storage")
T = TypeVar("T")

TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 24 * 3600
READ_CHUNK = 256 * 1024
# A download's open on the event loop (``LocalStore.open_body``): this many in a row slower than SLOW_OPEN_SECONDS
# send the next ones to a thread for a while.
SLOW_OPEN_SECONDS = 0.002
SLOW_OPENS = 3
SLOW_OPEN_BACKOFF_SECONDS = 10.0
DELETE_THREADS = 8  # the garbage collector's unlinks run on this many threads at once


def storage_error(exc: OSError) -> Exception:
    """The domain error for an OS error of the object store: a full disk is 507, anything else 503."""
    log.warning("object store I/O error: %s", exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("the object store is full")
    return ServiceUnavailable("the object store is unavailable")


class LocalStore:
    """Content-addressed files under ``root``. Several processes may share ``root``: renames are atomic."""

    def __init__(
        self,
        root: Path,
        pool: BufferPool,
        *,
        fsync: bool = True,
        direct_io: bool = True,
        unnamed_files: bool = True,
        slow_open_seconds: float = SLOW_OPEN_SECONDS,
    ) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._objects_dir, self._tmp_dir = str(self._objects), str(self._tmp)
        self._pool = pool
        self._fsync = fsync
        self._direct = direct_io
        self._unnamed_files = unnamed_files  # O_TMPFILE where the file system has it (``ObjectFile``)
        self._unnamed = False  # and it has: found out by ``prepare``
        self._stat_may_hang = True  # the root is on a network file system: found out by ``prepare``
        self._host = socket.gethostname().replace(".", "_")
        self.slow_open_seconds = slow_open_seconds
        self._slow_opens = 0  # slow opens on the loop in a row
        self._open_in_thread_until = 0.0  # time.monotonic(): downloads open their bodies in a thread until then

    def prepare(self) -> None:
        """Create the directories and remove temp files left by crashed processes (blocking; at start-up)."""
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.sweep_temp()
        self._unnamed = self._unnamed_files and links_unnamed_files(self._tmp, self._temp_name("probe"))
        log.info("object files are created %s", "unnamed (O_TMPFILE)" if self._unnamed else "as named temp files")
        self._stat_may_hang = may_hang(self.root)

    def _temp_name(self, prefix: str) -> str:
        return f"{prefix}.{self._host}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}"

    def sweep_temp(self, max_age_seconds: float = STALE_TEMP_SECONDS) -> int:
        """Remove temp files of dead processes on this host, and any older than ``max_age_seconds``."""
        removed = 0
        now = time.time()
        for entry in self._tmp.iterdir():
            if not entry.name.endswith(TEMP_SUFFIX):
                continue
            parts = entry.name.split(".")
            mine_and_dead = len(parts) >= 4 and parts[1] == self._host and not _pid_alive(parts[2])
            with contextlib.suppress(FileNotFoundError):
                if mine_and_dead or now - entry.stat().st_mtime > max_age_seconds:
                    entry.unlink()
                    removed += 1
        return removed

    def path_of(self, oid: Oid) -> Path:
        return Path(self._path_string(oid))

    def _shard_string(self, oid: Oid) -> str:
        """The object's shard directory, ``objects/ab/cd``: the store's layout, spelled here only."""
        first, second = oid.shard
        return f"{self._objects_dir}/{first}/{second}"

    def _path_string(self, oid: Oid) -> str:
        return f"{self._shard_string(oid)}/{oid}"

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        # Written, synced and renamed even when the object is already stored (the rename replaces it with the same
        # bytes): a shortcut would answer measurably faster, telling a caller that some repository holds this oid.
        # Strings, not Path objects, on the per-upload path (12 us less per upload; issue 17).
        tmp = f"{self._tmp_dir}/{self._temp_name(oid)}"
        shard = self._shard_string(oid)
        unnamed_in = shard if self._unnamed else None
        sink = _FileSink(
            lambda: ObjectFile(tmp, size, direct=self._direct, unnamed_in=unnamed_in, fsync=self._fsync),
            f"{shard}/{oid}",
            self._pool.size_for(size),
            fsync=self._fsync,
        )
        await ingest(source, size, oid, self._pool, sink)

    async def get(self, oid: Oid) -> StoredObject | None:
        path = self.path_of(oid)
        size = await _on_disk(_size_or_none, path)
        return None if size is None else StoredObject(size=size, path=path)

    async def open_body(self, oid: Oid) -> StoredObject | None:
        """The file opened and sized (``FileStore``): on the event loop while opens are fast, else in one
        worker-thread hop, closed again if the caller is cancelled while it opens.

        ``open`` and ``fstat`` of a body whose directory entries are cached take microseconds; the hop to a thread
        and back cost about 0.15 ms of CPU, a third of a 100 KiB download (issue 17). The body's bytes are read
        by ``sendfile`` on the loop anyway (as nginx reads them), which waits for the disk on a page-cache miss
        just as ``open`` would. ``SLOW_OPENS`` opens in a row slower than ``slow_open_seconds`` (cold directories,
        a network file system) send the opens of the next ``SLOW_OPEN_BACKOFF_SECONDS`` through a thread; one
        alone is the scheduler's doing (a busy machine preempts the loop's thread now and then).
        """
        path = self.path_of(oid)
        started = time.monotonic()
        if started >= self._open_in_thread_until:
            opened = _mapped(_open_sized, path)
            finished = time.monotonic()
            if finished - started <= self.slow_open_seconds:
                self._slow_opens = 0
            else:
                self._slow_opens += 1
                if self._slow_opens >= SLOW_OPENS:
                    self._slow_opens = 0
                    self._open_in_thread_until = finished + SLOW_OPEN_BACKOFF_SECONDS
        else:
            opened = await self._open_in_thread(path)
        if opened is None:
            return None
        file, size = opened
        return StoredObject(size=size, path=path, file=file)

    async def _open_in_thread(self, path: Path) -> tuple[BinaryIO, int] | None:
        opening = asyncio.ensure_future(_on_disk(_open_sized, path))
        try:
            opened = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise
        return opened

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        handle = await _on_disk(lambda: self.path_of(oid).open("rb"))
        try:
            await in_thread(handle.seek, start)
            left = length
            while left > 0:
                chunk = await in_thread(handle.read, min(left, READ_CHUNK))
                if not chunk:
                    raise ServiceUnavailable("the stored object is shorter than its size")
                left -= len(chunk)
                yield chunk
        finally:
            await in_thread(handle.close)

    async def size_of(self, oid: Oid) -> int | None:
        stored = await self.get(oid)
        return None if stored is None else stored.size

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        if not oids:
            return set()
        # One hop to a thread for the whole batch: a stat is microseconds, the hand-off is not.
        return await in_thread(self.present_now, oids)

    def presence_now(self) -> BlockingPresence | None:
        """``LocalPresence``: ``present_now`` on a local disk; None on a network file system (known after
        ``prepare``), where a stat can block for as long as the server is away."""
        return None if self._stat_may_hang else self.present_now

    def present_now(self, oids: Collection[Oid]) -> set[Oid]:
        """``present``, blocking: a stat per oid, for callers already on a worker thread."""
        return _mapped(lambda: {oid for oid in oids if _is_file(self._path_string(oid))})

    async def check(self) -> None:
        await _on_disk(self._check_writable)

    def _check_writable(self) -> None:
        probe = self._tmp / self._temp_name("probe")
        probe.write_bytes(b"")
        probe.unlink()

    # Whole-store inventory (fsck, later GC): the ``StoreInventory`` port.

    async def listing(self) -> AsyncIterator[StoredBody]:
        """Every object file in oid order: the shard directories are walked in name order, one top-level shard per
        hop to a thread (1/256 of the store in memory at a time)."""
        for first in filter(_is_shard, await _on_disk(_sorted_names, self._objects)):
            for oid, size in await _on_disk(_shard_bodies, self._objects / first):
                yield StoredBody(oid, size)

    async def digests(self, bodies: Sequence[tuple[Oid, int]]) -> dict[Oid, str | None]:
        """One hop to a thread for the whole batch, one small file in memory at a time: for 4 KiB objects the
        hand-offs, not the hashing, were the cost (fsck --rehash, issue 14)."""

        def hash_all() -> dict[Oid, str | None]:
            found: dict[Oid, str | None] = {}
            for oid, size in bodies:
                try:
                    with self.path_of(oid).open("rb") as handle:
                        data = handle.read(size + 1)
                except FileNotFoundError:
                    found[oid] = None
                    continue
                found[oid] = hashlib.sha256(data).hexdigest() if len(data) == size else None
            return found

        return await _on_disk(hash_all)

    async def sizes(self, oids: Collection[Oid]) -> dict[Oid, int]:
        def stat_all() -> dict[Oid, int]:
            found = {oid: _size_or_none(self.path_of(oid)) for oid in oids}
            return {oid: size for oid, size in found.items() if size is not None}

        return await _on_disk(stat_all)

    async def quarantine(self, oid: Oid) -> str | None:
        """Rename the file into ``quarantine/`` (same file system: atomic, and nothing is copied)."""
        target = self.root / QUARANTINE_DIR / f"{oid}.{time.time_ns()}"

        def move() -> str | None:
            target.parent.mkdir(exist_ok=True)
            try:
                self.path_of(oid).rename(target)
            except FileNotFoundError:
                return None
            return str(target)

        return await _on_disk(move)

    # Garbage collection: the ``GcStore`` port.

    async def delete(self, oids: Collection[Oid]) -> None:
        """Remove the bodies (those already gone are fine). Called by the collector while it holds the rows' locks."""

        def unlink_all(group: list[Oid]) -> None:
            for oid in group:
                self.path_of(oid).unlink(missing_ok=True)

        # Several threads at once: an unlink waits on the file system's journal, and they overlap (measured here on
        # ext4: 430 unlinks/s from one thread, 4,100/s from eight).
        ordered = list(oids)
        await asyncio.gather(*(_on_disk(unlink_all, ordered[i::DELETE_THREADS]) for i in range(DELETE_THREADS)))


class _FileSink:
    """The object file: two buffers (one filling while the other is hashed and written), written in order.

    The temp file is created by the first write, in its worker thread (not in a hop of its own); an object smaller
    than a buffer is created, written, synced and renamed in one call (``store_whole``).
    """

    buffers = 2

    def __init__(self, create: Callable[[], ObjectFile], final: str, buffer_size: int, *, fsync: bool) -> None:
        self._create = create
        self._file: ObjectFile | None = None
        self._final = final
        self._fsync = fsync
        self._writes = InOrder()
        self.buffer_size = buffer_size

    def _opened(self) -> ObjectFile:
        """Blocking; called only from the writes, which run one after another, and from commit after them."""
        if self._file is None:
            self._file = self._create()
        return self._file

    def write(self, view: memoryview) -> Awaitable[None]:
        return self._writes.submit(lambda data: _mapped(lambda: self._opened().write(data)), view)

    def store_whole(self, view: memoryview, sha256: bytes) -> None:
        _mapped(self._write_and_commit, view)

    def _write_and_commit(self, view: memoryview) -> None:
        file = self._opened()
        file.write_whole(view)
        file.commit(self._final, fsync=self._fsync)

    async def commit(self, sha256: bytes) -> None:
        await _on_disk(lambda: self._opened().commit(self._final, fsync=self._fsync))

    async def abort(self) -> None:
        if self._file is not None:
            await in_thread(self._file.discard)


_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)  # what ``Path.is_file`` answers False for


def _is_file(path: str) -> bool:
    """``Path.is_file`` on a string: a missing file is False, any other OS error is raised (a failing disk must not
    read as "the body is gone")."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)  # noqa: PTH116 (strings on the per-upload path)
    except OSError as exc:
        if exc.errno in _NOT_THERE:
            return False
        raise


def _mapped(fn: Callable[..., T], *args: object) -> T:
    """The store's own file operations: their OS errors become domain errors (507 for a full disk, else 503).

    A client that went away is also an OSError, so only our own calls go through here, never the body's reads.
    """
    try:
        return fn(*args)
    except OSError as exc:
        raise storage_error(exc) from exc


async def _on_disk(fn: Callable[..., T], *args: object) -> T:
    return await in_thread(_mapped, fn, *args)


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _open_sized(path: Path) -> tuple[BinaryIO, int] | None:
    """``path`` opened unbuffered (``sendfile`` reads the descriptor, never Python's buffer) with its size."""
    try:
        file = path.open("rb", buffering=0)  # the caller owns and closes it
    except FileNotFoundError:
        return None
    try:
        return file, os.fstat(file.fileno()).st_size
    except BaseException:
        file.close()
        raise


def _close_opened(opening: asyncio.Future[tuple[BinaryIO, int] | None]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opened = opening.result()
        if opened is not None:
            opened[0].close()


def _pid_alive(text: str) -> bool:
    pid = ascii_number(text, 10)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


QUARANTINE_DIR = "quarantine"  # beside objects/: fsck moves bodies that fail their check here


def _sorted_names(directory: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_shard(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


def _shard_bodies(shard: Path) -> list[tuple[Oid, int]]:
    """The object files under one top-level shard (``ab/``), in oid order; anything not named as an object is
    not one (nothing of lfsd's own writes there but the renames of finished objects)."""
    bodies: list[tuple[Oid, int]] = []
    for second in filter(_is_shard, _sorted_names(shard)):
        for name in _sorted_names(shard / second):
            try:
                oid = Oid.parse(name)
            except LfsError:
                continue
            if oid.shard != (shard.name, second):
                continue  # misplaced: never served under its oid
            size = _size_or_none(shard / second / name)
            if size is not None:
                bodies.append((oid, size))
    return bodies
