"""The shutdown drain, as a sequence a load balancer can rely on (what the middleware and hooks here serve).

1. Readiness turns 503, and the server keeps accepting for ``drain_delay`` seconds, so that a balancer polling
   readiness, or a Kubernetes endpoint removal, takes this replica out before it stops listening. Every response
   from now on carries ``Connection: close``: the balancer opens its next connections to another replica.
2. The listener stops and idle keep-alive connections are closed. A new request on an old connection (one that
   has carried a request before) gets 503 + ``Retry-After`` + ``Connection: close``, never a silent close. The first
   request on a connection accepted before the listener stopped is served: a balancer sends it right after
   connecting, and one with streamed request bodies (nginx's ``proxy_request_buffering off``) cannot retry it.
3. Requests in flight (uploads and downloads of any size) run on until they end, or until ``shutdown_grace``
   seconds after the signal. A stalled body ends on its own (408 after ``body_timeout``), and idle connections do
   not count, so a busy balancer cannot keep the drain going. Then the connections left are closed.

The caller then cancels what is left and closes the pools (``runner.cleanup()``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from lfsd.core.errors import ServiceUnavailable
from lfsd.http.keys import HEALTH, INFLIGHT

log = logging.getLogger("lfsd")

POLL_SECONDS = 0.1
ACCEPT_QUEUE_SECONDS = 1.0  # at most, for the event loop to accept what the kernel has queued
FIRST_REQUEST_SECONDS = 1.0  # at most, for the first request on a connection accepted before the listener stopped


class ShuttingDown(ServiceUnavailable):
    default_message = "this server is shutting down: retry, another one will answer"

    def __init__(self) -> None:
        super().__init__(retry_after=1)


@web.middleware
async def drain_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses new requests once the listener has stopped; counts the requests in handlers for the drain."""
    health = request.config_dict[HEALTH]
    if health.closed and _is_reused(request.protocol):
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
    if request.config_dict[HEALTH].draining:
        response.force_close()
        # aiohttp has already derived the header from keep-alive when this hook runs; the headers are not yet sent.
        response.headers[hdrs.CONNECTION] = "close"


# aiohttp has no public view of a connection's state; these read what its own keep-alive timeout, error handling
# and shutdown read (RequestHandler._process_keepalive, .handle_error, .shutdown). constraints.txt pins aiohttp;
# tests/e2e/test_operability.py and test_balancer.py fail if one stops working.
def _is_reused(connection: RequestHandler) -> bool:
    """It has carried a request before the current one."""
    return connection._request_count > 1


def _is_idle(connection: RequestHandler) -> bool:
    """Between two requests. A connection that has carried none is not idle: its first request may be on the way."""
    waiter = connection._waiter
    return connection._request_count > 0 and waiter is not None and not waiter.done()


def _is_fresh(connection: RequestHandler) -> bool:
    """Accepted, and no request yet."""
    return connection._request_count == 0 and not connection._request_in_progress


def _is_busy(connection: RequestHandler) -> bool:
    """A request in its handler, or its response being written."""
    return connection._request_in_progress


def _connections(runner: web.BaseRunner) -> list[RequestHandler]:
    server = runner.server
    return [] if server is None else server.connections


def close_connections(runner: web.BaseRunner, which: Callable[[RequestHandler], bool]) -> int:
    """Close the connections ``which`` selects, at once; returns how many."""
    chosen = [connection for connection in _connections(runner) if which(connection)]
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

    # Closing a listener resets the connections in its accept queue, requests and all: let the loop take them first.
    await _until(lambda: _accept_queue(site) == 0, loop.time() + ACCEPT_QUEUE_SECONDS)
    await site.stop()  # closes the listening socket before its first await: nothing can queue in between
    health.closed = True
    closed = close_connections(runner, _is_idle)
    log.info("listener stopped", extra={"event": "listener_stopped", "idle_connections_closed": closed})
    stopped = loop.time()

    inflight = app.get(INFLIGHT)

    def quiet() -> bool:
        if health.active > 0 or (inflight is not None and inflight.downloads > 0):
            return False
        # A connection accepted just before the listener stopped gets a moment for its first request to arrive.
        fresh = any(_is_fresh(connection) for connection in _connections(runner))
        return not fresh or loop.time() >= stopped + FIRST_REQUEST_SECONDS

    if not await _until(quiet, deadline):
        log.warning(
            "grace period over: cancelling what is left",
            extra={"event": "grace_expired", "requests": health.active},
        )
        return
    # What is left is idle, or lingering after a body it will not read (a 408): the cleanup would wait for those.
    # Two looks, one poll apart, so that a request parsed but not yet in its handler is not taken for either.
    quiet_ones = {
        connection: connection._request_count for connection in _connections(runner) if not _is_busy(connection)
    }
    await asyncio.sleep(POLL_SECONDS)
    closed = close_connections(
        runner, lambda connection: not _is_busy(connection) and quiet_ones.get(connection) == connection._request_count
    )
    log.info("drained", extra={"event": "drained", "connections_closed": closed})


async def _until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` until it holds (True) or the loop's clock passes ``deadline`` (False)."""
    loop = asyncio.get_running_loop()
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


def _accept_queue(site: web.BaseSite) -> int:
    """Connections the kernel has completed for the listener that the event loop has not accepted yet (Linux)."""
    server = site._server  # aiohttp keeps the asyncio server private
    if not hasattr(socket, "TCP_INFO") or not isinstance(server, asyncio.Server):
        return 0
    # For a listening socket, struct tcp_info's tcpi_unacked (a u32 at byte 24) is the accept queue's length.
    return sum(
        struct.unpack_from("I", listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32), 24)[0]
        for listener in server.sockets
    )
