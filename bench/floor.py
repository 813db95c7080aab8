"""The framework floor for bench/small.py ``--floor``: the least an aiohttp server can do for the same requests.

The Batch API answers every object with links back here (no authentication, no lookup, no signing); a PUT reads the
whole body (``await request.read()``, as a handler that takes a small object in one piece would) and answers 200; a
GET sends one stored file with ``loop.sendfile`` on the event loop, as ``FileResponse`` sends its body but without
its executor trips (``stat`` and ``open`` in a thread: 0.85-1.11 ms per 100 KiB object against lfsd's 0.95-1.03, so
no floor for lfsd's GET, which opens on the loop). Same Python and aiohttp as lfsd, one process, one event loop:
what remains of lfsd's CPU per object above this is lfsd's own.

``--durable DIR`` (the "durable floor") makes a PUT do what lfsd's guarantees take, in the fewest steps and with
lfsd's choices for the disk: the body read into a pooled page-aligned buffer; then, in one worker-thread call, its
SHA-256 checked, its shard directories made where missing (each new one synced in its parent), an unnamed file
(``O_TMPFILE``) there written with ``O_DIRECT``, synced, linked by name, synced again, and the directory synced
(objectfile.py); then its row committed with whatever other rows are waiting (a group commit, as lfsd's ``link``), on
a thread of its own holding one SQLite connection (WAL, ``synchronous=FULL``). No authentication, no link checks, no
quotas or usage counters, no logs or metrics: what lfsd spends above this on an upload is the price of its own code,
not of durability.

Usage: ``python bench/floor.py PORT FILE [--durable DIR]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

LFS_JSON = "application/vnd.git-lfs+json"
BUFFER = 1024 * 1024  # the durable floor takes objects up to this size, each read whole into one pooled buffer


def _open_unbuffered(path: Path) -> BinaryIO:
    return path.open("rb", buffering=0)


class DurableStore:
    """Verified, durable, indexed uploads with no more code than they take (see the module's docstring)."""

    GROUP = 32  # rows per commit at most, as lfsd's GROUP_LINKS

    def __init__(self, root: Path) -> None:
        self._root = root
        (root / "objects").mkdir(parents=True, exist_ok=True)
        self.files = ThreadPoolExecutor(8, thread_name_prefix="floor-files")
        self._index = ThreadPoolExecutor(1, thread_name_prefix="floor-sqlite")
        self._db = self._index.submit(self._connect).result()
        self._buffers: list[mmap.mmap] = []
        self._pending: list[tuple[str, int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._root / "index.db", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS objects (oid TEXT PRIMARY KEY, size INTEGER NOT NULL)")
        return db

    def path_of(self, oid: str) -> Path:
        return self._root / "objects" / oid[:2] / oid[2:4] / oid

    def take(self) -> mmap.mmap:
        return self._buffers.pop() if self._buffers else mmap.mmap(-1, BUFFER)

    def give(self, buffer: mmap.mmap) -> None:
        self._buffers.append(buffer)

    def store(self, oid: str, body: memoryview) -> bool:
        if hashlib.sha256(body).hexdigest() != oid:
            return False
        shard = f"{self._root}/objects/{oid[:2]}/{oid[2:4]}"
        flags = os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC | os.O_DIRECT
        try:
            fd = os.open(shard, flags, 0o644)
        except FileNotFoundError:
            _make_dirs(shard)
            fd = os.open(shard, flags, 0o644)
        try:
            whole = len(body) - len(body) % mmap.PAGESIZE
            _write_all(fd, body[:whole])
            if whole < len(body):  # the tail is not block-sized: through the page cache
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                _write_all(fd, body[whole:])
            os.fsync(fd)
            dir_fd = os.open(shard, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with contextlib.suppress(FileExistsError):
                    os.link(f"/proc/self/fd/{fd}", oid, dst_dir_fd=dir_fd)
                os.fsync(fd)
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            os.close(fd)
        return True

    async def record(self, oid: str, size: int) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((oid, size, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            group, self._pending = self._pending[: self.GROUP], self._pending[self.GROUP :]
            await loop.run_in_executor(self._index, self._commit, [(oid, size) for oid, size, _ in group])
            for _, _, done in group:
                done.set_result(None)

    def _commit(self, rows: list[tuple[str, int]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT OR IGNORE INTO objects (oid, size) VALUES (?, ?)", rows)
        self._db.execute("COMMIT")


def _make_dirs(directory: str) -> None:
    """``directory`` and its missing parents, each new one synced in its parent (a power loss must not drop it)."""
    missing = []
    while not os.path.isdir(directory):  # noqa: PTH112 (strings, as on lfsd's per-upload path)
        missing.append(directory)
        directory = os.path.dirname(directory)  # noqa: PTH120
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(level)  # noqa: PTH102
        parent = os.open(os.path.dirname(level), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # noqa: PTH120
        try:
            os.fsync(parent)
        finally:
            os.close(parent)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def main() -> None:
    port = int(sys.argv[1])
    served = Path(sys.argv[2])
    durable = DurableStore(Path(sys.argv[4])) if sys.argv[3:4] == ["--durable"] else None
    base = f"http://127.0.0.1:{port}/objects"

    async def batch(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        operation = body["operation"]
        answers = [
            {
                "oid": wanted["oid"],
                "size": wanted["size"],
                "actions": {operation: {"href": f"{base}/{wanted['oid']}", "expires_in": 3600}},
            }
            for wanted in body["objects"]
        ]
        return web.json_response({"transfer": "basic", "objects": answers}, content_type=LFS_JSON)

    async def put(request: web.Request) -> web.Response:
        if durable is None:
            await request.read()
            return web.Response()
        if request.content_length is None or request.content_length > BUFFER:
            return web.Response(status=413)
        oid = request.match_info["oid"]
        buffer = durable.take()
        try:
            view = memoryview(buffer)
            filled = 0
            async for chunk in request.content.iter_any():
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
            loop = asyncio.get_running_loop()
            stored = await loop.run_in_executor(durable.files, durable.store, oid, view[:filled])
            view.release()
        finally:
            durable.give(buffer)
        if not stored:
            return web.Response(status=422)
        await durable.record(oid, filled)
        return web.Response()

    async def get(request: web.Request) -> web.StreamResponse:
        # On the loop, as lfsd opens a body: the file's entries are cached, so this takes microseconds. The durable
        # floor serves what was stored (the real client checks what it downloads).
        path = served if durable is None else durable.path_of(request.match_info["oid"])
        with _open_unbuffered(path) as file:
            size = os.fstat(file.fileno()).st_size
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.content_length = size
            await response.prepare(request)
            assert request.transport is not None
            await asyncio.get_running_loop().sendfile(request.transport, file, 0, size)
            await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/{repo:.+}/info/lfs/objects/batch", batch)
    app.router.add_put("/objects/{oid}", put)
    app.router.add_get("/objects/{oid}", get)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
