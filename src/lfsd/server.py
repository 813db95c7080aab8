"""Runs the application: logging, listeners, signals and the drain.

Shutdown, as a sequence (``lfsd.http.drain`` has the details): the first SIGTERM turns readiness 503; lfsd keeps
accepting for ``drain_delay`` seconds, closing each connection after its response, so that a load balancer moves
away; then the main listener stops and idle connections close; requests in flight (uploads and downloads of any
size) run on until ``shutdown_grace`` seconds after the signal; what remains is cancelled (its temp files removed);
then the lifespan closes the pools and the process exits 0. SIGINT (Ctrl-C: a person, not a balancer, is waiting)
skips the delay. A second signal exits at once. With ``--workers N`` (``lfsd.workers``) the supervisor passes the
signal on to every worker, and each runs this same sequence.

The wait for requests in flight is lfsd's own: aiohttp's graceful shutdown stops reading request bodies at once
(``RequestHandler.data_received`` drops data after ``close()``), so an upload could never finish inside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from lfsd.app import build_app
from lfsd.config import Settings, host_of, port_of
from lfsd.http.drain import drain
from lfsd.http.health import build_admin_app
from lfsd.http.keys import HEALTH, METRICS
from lfsd.http.request_log import RequestLog
from lfsd.memory import tune_malloc
from lfsd.observability.logs import configure
from lfsd.workers import Listeners, supervise

log = logging.getLogger("lfsd")

EXIT_AT_ONCE = 130
CANCEL_SECONDS = 5.0  # after the grace period: time for cancelled handlers to clean up
WATCH_SECONDS = 1.0


def serve(settings: Settings) -> None:
    configure(settings.log_format, settings.log_level)
    tune_malloc()  # before the workers fork: they inherit it
    if settings.workers == 1:
        asyncio.run(_serve(settings))
        return
    code = supervise(settings, lambda listeners: _worker(settings, listeners))
    if code:
        raise SystemExit(code)


def _worker(settings: Settings, listeners: Listeners) -> int:
    asyncio.run(_serve(settings, listeners))
    return 0


async def _serve(settings: Settings, listeners: Listeners | None = None) -> None:
    """One server process: the only one, or a worker on the supervisor's ``listeners``."""
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) if listeners is not None else None
    app = build_app(settings, metrics_dir=metrics_dir)
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
    site: web.BaseSite = (
        web.TCPSite(runner, settings.host, settings.port) if listeners is None else web.SockSite(runner, listeners.main)
    )
    background: list[asyncio.Task[None]] = []
    try:
        await site.start()
        if settings.metrics_listen:
            admin = web.AppRunner(build_admin_app(app), handle_signals=False, access_log=None)
            await admin.setup()
            if listeners is not None and listeners.metrics is not None:
                await web.SockSite(admin, listeners.metrics).start()
            else:
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
        if listeners is not None:
            background.append(asyncio.create_task(_watch_supervisor(listeners.supervisor, on_signal)))
            background.append(asyncio.create_task(_publish_pool(app)))
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
        for task in background:
            task.cancel()
        # Cancels whatever is still running (its cleanup removes temp files), then runs the lifespan's cleanup.
        await runner.cleanup()
        if admin is not None:
            await admin.cleanup()
        log.info("stopped", extra={"event": "stopped"})


async def _watch_supervisor(supervisor: int, on_signal: Callable[[int], None]) -> None:
    """A worker whose supervisor died (killed, say) drains and exits instead of serving on unsupervised."""
    while os.getppid() == supervisor:  # noqa: ASYNC110 (the parent pid changes with no event to wait on)
        await asyncio.sleep(WATCH_SECONDS)
    log.warning("the supervisor is gone: draining", extra={"event": "orphaned"})
    on_signal(signal.SIGTERM)


async def _publish_pool(app: web.Application) -> None:
    """This worker's database pool figures, for a scrape that may land on another worker."""
    while True:
        app[METRICS].refresh_pool()
        await asyncio.sleep(WATCH_SECONDS)
