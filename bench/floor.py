"""The framework floor for bench/small.py ``--floor``: the least an aiohttp server can do for the same requests.

The Batch API answers every object with links back here (no authentication, no lookup, no signing); a PUT reads the
whole body (``await request.read()``, as a handler that takes a small object in one piece would) and answers 200; a
GET sends one stored file with ``loop.sendfile`` on the event loop, as ``FileResponse`` sends its body but without
its executor trips (``stat`` and ``open`` in a thread: 0.85-1.11 ms per 100 KiB object against lfsd's 0.95-1.03, so
no floor for lfsd's GET, which opens on the loop). Same Python and aiohttp as lfsd, one process, one event loop:
what remains of lfsd's CPU per object above this is lfsd's own.

``--durable DIR`` (the "durable floor") makes a PUT do the least that lfsd's guarantees take, written plainly: the body
read whole, then in one worker-thread call its SHA-256 checked, an unnamed file (``O_TMPFILE``) in its shard directory
written, synced, linked by name, synced again and its directory synced (lfsd's three syncs, objectfile.py), then one
row inserted and committed on a thread of its own holding one SQLite connection (WAL, ``synchronous=FULL``, as lfsd).
No authentication, no link checks, no quotas, no logs or metrics: what lfsd spends above this on an upload is the
price of its own code, not of durability.

Usage: ``python bench/floor.py PORT FILE [--durable DIR]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

LFS_JSON = "application/vnd.git-lfs+json"


def _open_unbuffered(path: Path) -> BinaryIO:
    return path.open("rb", buffering=0)


class DurableStore:
    """Verified, durable, indexed uploads with no more code than they take (see the module's docstring)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        (root / "objects").mkdir(parents=True, exist_ok=True)
        self.files = ThreadPoolExecutor(8, thread_name_prefix="floor-files")
        self.index = ThreadPoolExecutor(1, thread_name_prefix="floor-sqlite")
        self._db = self.index.submit(self._connect).result()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._root / "index.db", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS objects (oid TEXT PRIMARY KEY, size INTEGER NOT NULL)")
        return db

    def path_of(self, oid: str) -> Path:
        return self._root / "objects" / oid[:2] / oid[2:4] / oid

    def store(self, oid: str, body: bytes) -> bool:
        if hashlib.sha256(body).hexdigest() != oid:
            return False
        shard = f"{self._root}/objects/{oid[:2]}/{oid[2:4]}"
        os.makedirs(shard, exist_ok=True)  # noqa: PTH103 (strings, as on lfsd's per-upload path)
        fd = os.open(shard, os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, body)
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

    def record(self, oid: str, size: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("INSERT OR IGNORE INTO objects (oid, size) VALUES (?, ?)", (oid, size))
        self._db.execute("COMMIT")


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
        body = await request.read()
        if durable is not None:
            oid = request.match_info["oid"]
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(durable.files, durable.store, oid, body):
                return web.Response(status=422)
            await loop.run_in_executor(durable.index, durable.record, oid, len(body))
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
