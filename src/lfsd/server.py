"""Runs the application: logging, listeners, signals and the drain.

Shutdown, as a sequence: the first SIGTERM/SIGINT turns readiness 503 and closes the main listener; requests in
flight (uploads and downloads of any size) run on for up to ``shutdown_grace`` seconds; what remains is cancelled
(its temp files removed); then the lifespan closes the pools and the process exits 0. A second signal exits at once.

The wait for requests in flight is lfsd's own: aiohttp's graceful shutdown stops reading request bodies at once
(``RequestHandler.data_received`` drops data after ``close()``), so an upload could never finish inside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from aiohttp import web

from lfsd.app import build_app
from lfsd.config import Settings, host_of, port_of
from lfsd.http.health import build_admin_app
from lfsd.http.keys import HEALTH, INFLIGHT
from lfsd.http.request_log import RequestLog
from lfsd.observability.logs import configure

log = logging.getLogger("lfsd")

EXIT_AT_ONCE = 130
CANCEL_SECONDS = 5.0  # after the grace period: time for cancelled handlers to clean up
DRAIN_POLL_SECONDS = 0.1


async def _drain(app: web.Application, grace: float) -> None:
    """Wait until no request is in a handler and no download is being sent, or the grace period is over."""
    deadline = time.monotonic() + grace
    health = app[HEALTH]
    inflight = app.get(INFLIGHT)
    while health.active > 0 or (inflight is not None and inflight.downloads > 0):
        if time.monotonic() >= deadline:
            log.warning(
                "grace period over: cancelling what is left",
                extra={"event": "grace_expired", "requests": health.active},
            )
            return
        await asyncio.sleep(DRAIN_POLL_SECONDS)


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
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                log.warning("second signal: exiting at once", extra={"event": "abort", "signal": signum})
                logging.shutdown()
                os._exit(EXIT_AT_ONCE)
            app[HEALTH].draining = True
            log.info(
                "draining",
                extra={"event": "draining", "signal": signum, "grace_seconds": settings.shutdown_grace},
            )
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        await stop.wait()
        await site.stop()  # no new connections
        await _drain(app, settings.shutdown_grace)
    finally:
        # Cancels whatever is still running (its cleanup removes temp files), then runs the lifespan's cleanup.
        await runner.cleanup()
        if admin is not None:
            await admin.cleanup()
        log.info("stopped", extra={"event": "stopped"})
