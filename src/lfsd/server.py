"""Runs the application: logging, listeners, signals and the drain.

Shutdown, as a sequence (``lfsd.http.drain`` has the details): the first SIGTERM turns readiness 503; lfsd keeps
accepting for ``drain_delay`` seconds, closing each connection after its response, so that a load balancer moves
away; then the main listener stops and idle connections close; requests in flight (uploads and downloads of any
size) run on until ``shutdown_grace`` seconds after the signal; what remains is cancelled (its temp files removed);
then the lifespan closes the pools and the process exits 0. SIGINT (Ctrl-C: a person, not a balancer, is waiting)
skips the delay. A second signal exits at once.

The wait for requests in flight is lfsd's own: aiohttp's graceful shutdown stops reading request bodies at once
(``RequestHandler.data_received`` drops data after ``close()``), so an upload could never finish inside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from lfsd.app import build_app
from lfsd.config import Settings, host_of, port_of
from lfsd.http.drain import drain
from lfsd.http.health import build_admin_app
from lfsd.http.keys import HEALTH
from lfsd.http.request_log import RequestLog
from lfsd.observability.logs import configure

log = logging.getLogger("lfsd")

EXIT_AT_ONCE = 130
CANCEL_SECONDS = 5.0  # after the grace period: time for cancelled handlers to clean up


def serve(settings: Settings) -> None:
    configure(settings.log_format, settings.log_level)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    app = build_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=RequestLog,
        access_log=logging.getLogger("lfsd.access"),
        shutdown_timeout=CANCEL_SECONDS,
        keepalive_timeout=settings.keepalive_timeout,
        # aiohttp's parser limits sit above lfsd's own (limits_middleware), which answer in LFS JSON.
        max_line_size=settings.max_url_length * 2,
        max_field_size=settings.max_header_bytes,
    )
    await runner.setup()
    admin: web.AppRunner | None = None
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
        if settings.metrics_listen:
            admin = web.AppRunner(build_admin_app(app), handle_signals=False, access_log=None)
            await admin.setup()
            await web.TCPSite(admin, host_of(settings.metrics_listen), port_of(settings.metrics_listen)).start()
        log.info(
            "listening",
            extra={"event": "started", "listen": settings.listen, "metrics_listen": settings.metrics_listen or ""},
        )
        loop = asyncio.get_running_loop()
        signalled: asyncio.Future[int] = loop.create_future()

        def on_signal(signum: int) -> None:
            if signalled.done():
                log.warning("second signal: exiting at once", extra={"event": "abort", "signal": signum})
                logging.shutdown()
                os._exit(EXIT_AT_ONCE)
            app[HEALTH].draining = True  # readiness turns 503 at once, whatever the event loop does next
            signalled.set_result(signum)

        for handled in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(handled, on_signal, handled)
        signum = await signalled
        delay = 0.0 if signum == signal.SIGINT else settings.drain_delay
        log.info(
            "draining",
            extra={
                "event": "draining",
                "signal": signum,
                "delay_seconds": delay,
                "grace_seconds": settings.shutdown_grace,
            },
        )
        await drain(app, runner, site, delay=delay, grace=settings.shutdown_grace)
    finally:
        # Cancels whatever is still running (its cleanup removes temp files), then runs the lifespan's cleanup.
        await runner.cleanup()
        if admin is not None:
            await admin.cleanup()
        log.info("stopped", extra={"event": "stopped"})
