"""``/healthz`` (alive), ``/readyz`` (database and storage reachable; 503 while starting or draining), ``/metrics``."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from lfsd.core.errors import LfsError
from lfsd.http.keys import HEALTH, METRICS, PROBES, SCRAPE

log = logging.getLogger("lfsd.health")

READY_TIMEOUT_SECONDS = 3.0


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    health = app[HEALTH]
    if health.draining:
        return web.json_response({"status": "draining"}, status=503)
    if not health.started or PROBES not in app:
        return web.json_response({"status": "starting"}, status=503)
    failures: dict[str, str] = {}
    for name, probe in app[PROBES].items():
        try:
            await asyncio.wait_for(probe(), READY_TIMEOUT_SECONDS)
        except (LfsError, TimeoutError) as exc:
            failures[name] = exc.message if isinstance(exc, LfsError) else "timed out"
    if failures:
        return web.json_response({"status": "unavailable", "failures": failures}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if SCRAPE in app:
        try:
            await asyncio.wait_for(app[SCRAPE](), READY_TIMEOUT_SECONDS)
        except (LfsError, TimeoutError):
            log.warning("could not refresh the metrics read from the database")
    body = app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def build_admin_app(main: web.Application) -> web.Application:
    """The health and metrics routes on a listener of their own, sharing the main application's state.

    It stays up while the main listener drains, so that readiness can be seen turning 503.
    """
    admin = web.Application()
    admin[HEALTH] = main[HEALTH]
    admin[METRICS] = main[METRICS]
    if PROBES in main:
        admin[PROBES] = main[PROBES]
    if SCRAPE in main:
        admin[SCRAPE] = main[SCRAPE]
    add_health_routes(admin)
    return admin
