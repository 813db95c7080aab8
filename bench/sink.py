"""A trivial HTTP sink for the ceilings: PUT discards the body, GET sends a file with sendfile (aiohttp).

Given the served file's oid as a fourth argument it also answers the LFS Batch API for that one object (any
repository path, no authentication), so that the real ``git lfs`` client can fetch from it (bench/bigfetch.py
``--git``): a plain sendfile server to hold lfsd's client-side cost against.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aiohttp import web

LFS_JSON = "application/vnd.git-lfs+json"


def main() -> None:
    port = int(sys.argv[1])
    served = Path(sys.argv[2])
    cold = Path(sys.argv[3])
    oid = sys.argv[4] if len(sys.argv) > 4 else None

    async def put(request: web.Request) -> web.Response:
        async for _ in request.content.iter_chunked(256 * 1024):
            pass
        return web.Response()

    async def get(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(served)

    async def get_cold(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(cold)

    async def batch(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        answers = []
        for wanted in body.get("objects", []):
            answer = {"oid": wanted["oid"], "size": wanted["size"]}
            if wanted["oid"] == oid and body.get("operation") == "download":
                answer["actions"] = {"download": {"href": f"http://127.0.0.1:{port}/file", "expires_in": 3600}}
            else:
                answer["error"] = {"code": 404, "message": "not served here"}
            answers.append(answer)
        return web.json_response({"transfer": "basic", "objects": answers}, content_type=LFS_JSON)

    app = web.Application()
    app.router.add_put("/sink", put)
    app.router.add_get("/file", get)
    app.router.add_get("/cold", get_cold)
    if oid is not None:
        app.router.add_post("/{repo:.+}/info/lfs/objects/batch", batch)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
