"""Process state that the health endpoints report and the drain (``lfsd.http.drain``) follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from weakref import WeakSet

from aiohttp import web

# The authenticated user's name, for the request log.
USER: Final = web.RequestKey("user", str)


@dataclass
class Health:
    """The process's phase, from start to shutdown, and what a drain waits for."""

    started: bool = False  # the lifespan has opened everything
    draining: bool = False  # from the first shutdown signal: readiness 503, every response closes its connection
    closed: bool = False  # from the end of the drain delay: the listener is stopped, new requests get 503
    active: int = 0  # requests inside a handler
    responding: WeakSet[web.StreamResponse] = field(default_factory=WeakSet)  # returned by handlers before the drain


HEALTH: Final = web.AppKey("health", Health)
