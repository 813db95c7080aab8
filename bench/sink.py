"""A trivial HTTP sink for the ceilings: PUT discards the body, GET sends a file with sendfile (aiohttp)."""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    port = int(sys.argv[1])
    served = Path(sys.argv[2])
    cold = Path(sys.argv[3])

    async def put(request: web.Request) -> web.Response:
        async for _ in request.content.iter_chunked(256 * 1024):
            pass
        return web.Response()

    async def get(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(served)

    async def get_cold(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(cold)

    app = web.Application()
    app.router.add_put("/sink", put)
    app.router.add_get("/file", get)
    app.router.add_get("/cold", get_cold)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
