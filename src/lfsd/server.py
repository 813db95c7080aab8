"""Runs the application: logging, the listener, signals."""

from __future__ import annotations

import logging

from aiohttp import web

from lfsd.app import build_app
from lfsd.config import Settings

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lfsd.db").setLevel(logging.NOTSET)  # the CLI quiets it for one-line command errors
    app = build_app(settings)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log_format=ACCESS_LOG_FORMAT,
        print=lambda msg: logging.getLogger("lfsd").info("%s", msg.strip()),
        handle_signals=True,
    )
