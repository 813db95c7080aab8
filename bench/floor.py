"""The framework floor for bench/small.py ``--floor``: the least an aiohttp server can do for the same requests.

The Batch API answers every object with links back here (no authentication, no lookup, no signing); a PUT reads the
whole body (``await request.read()``, as a handler that takes a small object in one piece would) and answers 200; a
GET sends one stored file with ``loop.sendfile`` on the event loop, as ``FileResponse`` sends its body but without
its executor trips (``stat`` and ``open`` in a thread: 0.85-1.11 ms per 100 KiB object against lfsd's 0.95-1.03, so
no floor for lfsd's GET, which opens on the loop). Same Python and aiohttp as lfsd, one process, one event loop:
what remains of lfsd's CPU per object above this is lfsd's own.

Usage: ``python bench/floor.py PORT FILE``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

LFS_JSON = "application/vnd.git-lfs+json"


def _open_unbuffered(path: Path) -> BinaryIO:
    return path.open("rb", buffering=0)


def main() -> None:
    port = int(sys.argv[1])
    served = Path(sys.argv[2])
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
        await request.read()
        return web.Response()

    async def get(request: web.Request) -> web.StreamResponse:
        # On the loop, as lfsd opens a body: the file's entries are cached, so this takes microseconds.
        with _open_unbuffered(served) as file:
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
