"""Process state that the health endpoints report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

# The authenticated user's name, for the request log.
USER: Final = web.RequestKey("user", str)


@dataclass
class Health:
    """``started`` once the lifespan has opened everything; ``draining`` from the first shutdown signal on."""

    started: bool = False
    draining: bool = False
    active: int = 0  # requests inside a handler (see ``activity_middleware``)


@web.middleware
async def activity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts requests in handlers, so that a drain knows when they are done."""
    health = request.app[HEALTH]
    health.active += 1
    try:
        return await handler(request)
    finally:
        health.active -= 1


HEALTH: Final = web.AppKey("health", Health)
