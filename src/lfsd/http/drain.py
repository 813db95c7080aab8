"""The shutdown drain, as a sequence a load balancer can rely on (what the middleware and hooks here serve).

1. Readiness turns 503, and the server keeps accepting for ``drain_delay`` seconds, so that a balancer polling
   readiness, or a Kubernetes endpoint removal, takes this replica out before it stops listening. Every response
   from now on carries ``Connection: close``: the balancer opens its next connections to another replica.
2. The listener stops and idle keep-alive connections are closed. A request that still arrives on an old
   connection gets 503 + ``Retry-After`` + ``Connection: close``, never a silent close.
3. Requests in flight (uploads and downloads of any size) run on until they end, or until ``shutdown_grace``
   seconds after the signal. A stalled body ends on its own (408 after ``body_timeout``), and idle connections do
   not count, so a busy balancer cannot keep the drain going. Then the connections left are closed.

The caller then cancels what is left and closes the pools (``runner.cleanup()``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from lfsd.core.errors import ServiceUnavailable
from lfsd.http.keys import HEALTH, INFLIGHT

log = logging.getLogger("lfsd")

POLL_SECONDS = 0.1


class ShuttingDown(ServiceUnavailable):
    default_message = "this server is shutting down: retry, another one will answer"

    def __init__(self) -> None:
        super().__init__(retry_after=1)


@web.middleware
async def drain_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses new requests once the listener has stopped; counts the requests in handlers for the drain."""
    health = request.app[HEALTH]
    if health.closed:
        raise ShuttingDown()
    health.active += 1
    try:
        response = await handler(request)
    finally:
        health.active -= 1
    if health.draining:
        response.force_close()  # it may have been prepared (its headers sent) before the drain began
    else:
        # A response can outlive its handler (a file is sent after the handler returns): the drain closes it then.
        health.responding.add(response)
    return response


async def close_while_draining(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: during the drain, every response says ``Connection: close`` and closes."""
    if request.app[HEALTH].draining:
        response.force_close()
        # aiohttp has already derived the header from keep-alive when this hook runs; the headers are not yet sent.
        response.headers[hdrs.CONNECTION] = "close"


# aiohttp has no public view of a connection's state; these read what its own keep-alive timeout and shutdown read
# (RequestHandler._process_keepalive and .shutdown). constraints.txt pins aiohttp; tests/e2e/test_operability.py fails
# if either stops working.
def _is_idle(connection: RequestHandler) -> bool:
    """Waiting for its next request."""
    waiter = connection._waiter
    return waiter is not None and not waiter.done()


def _is_busy(connection: RequestHandler) -> bool:
    """A request in its handler, or its response being written."""
    return connection._request_in_progress


def close_connections(runner: web.BaseRunner, which: Callable[[RequestHandler], bool]) -> int:
    """Close the connections ``which`` selects, at once; returns how many."""
    server = runner.server
    if server is None:
        return 0
    chosen = [connection for connection in server.connections if which(connection)]
    for connection in chosen:
        connection.force_close()
    return len(chosen)


async def drain(
    app: web.Application, runner: web.BaseRunner, site: web.BaseSite, *, delay: float, grace: float
) -> None:
    """Steps 1 to 3 above; returns when nothing is in flight any more, or when the grace period is over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    health = app[HEALTH]

    health.draining = True
    for response in list(health.responding):
        response.force_close()
    health.responding.clear()
    await asyncio.sleep(min(delay, grace))

    health.closed = True
    await site.stop()
    closed = close_connections(runner, _is_idle)
    log.info("listener stopped", extra={"event": "listener_stopped", "idle_connections_closed": closed})

    inflight = app.get(INFLIGHT)
    while health.active > 0 or (inflight is not None and inflight.downloads > 0):
        if loop.time() >= deadline:
            log.warning(
                "grace period over: cancelling what is left",
                extra={"event": "grace_expired", "requests": health.active},
            )
            return
        await asyncio.sleep(POLL_SECONDS)
    # What is left is idle, or lingering after a body it will not read (a 408): the cleanup would wait for those.
    close_connections(runner, lambda connection: not _is_busy(connection))
