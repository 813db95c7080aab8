"""The admin HTTP API: JSON under ``/api/v1/`` over the administration use cases (``core/admin.py``).

It only translates: credentials become an ``Actor``, paths, query strings and bodies become the core's typed
values, and results become JSON. Who may do what, and the audit log, stay in the core.
"""

from __future__ import annotations

from aiohttp import web

from lfsd.http.admin_api.openapi import OPENAPI
from lfsd.http.admin_api.routes import OPERATIONS


def add_admin_routes(app: web.Application) -> None:
    for op in (*OPERATIONS, OPENAPI):
        app.router.add_route(op.method, op.route, op.handler)
