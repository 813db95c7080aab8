"""The route table."""

from __future__ import annotations

from aiohttp import web

from lfsd.http.batch import batch
from lfsd.http.git import add_git_routes
from lfsd.http.locks import add_lock_routes
from lfsd.http.paths import BATCH_ROUTE, OBJECT_ROUTE, REPO_PATTERN, VERIFY_ROUTE
from lfsd.http.transfer import download, expect_continue, upload, verify


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", BATCH_ROUTE, batch)
    app.router.add_put(OBJECT_ROUTE, upload, expect_handler=expect_continue)
    app.router.add_get(OBJECT_ROUTE, download)
    app.router.add_post(VERIFY_ROUTE, verify)
    add_lock_routes(app, REPO_PATTERN)
    add_git_routes(app)
