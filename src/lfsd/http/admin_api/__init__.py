"""The admin HTTP API: JSON under ``/api/v1/`` over the administration use cases (``core/admin.py``).

It only translates: credentials become an ``Actor``, paths, query strings and bodies become the core's typed
values, and results become JSON. Who may do what, and the audit log, stay in the core.
"""

from __future__ import annotations

from aiohttp import web

from lfsd.core.errors import LfsError
from lfsd.core.names import UserName
from lfsd.core.repo import RepoPath
from lfsd.core.usage import parse_owner
from lfsd.http.admin_api.edge import actor, admin
from lfsd.http.admin_api.routes import OPENAPI, OPERATIONS, Handler, Operation, handler


def _target(request: web.Request) -> str:
    """What a refused call was about, named as the use cases name it, when the path names it validly."""
    info = request.match_info
    try:
        if "repo" in info:
            return f"repo:{RepoPath.parse(info['repo'])}"
        if "owner" in info:
            return f"owner:{parse_owner(info['owner'])}"
        if "name" in info:
            return f"user:{UserName.parse(info['name'])}"
    except LfsError:
        pass
    return "*"


def _guarded(op: Operation) -> Handler:
    """Server-admin operations refuse anyone else before reading their request: a non-admin gets 403 whatever the
    body, and the refusal is recorded as the use case would record it."""
    call = handler(op)
    if op.access != "admin":
        return call

    async def guarded(request: web.Request) -> web.StreamResponse:
        await admin(request).refuse_unless_admin(await actor(request), op.action, _target(request))
        return await call(request)

    return guarded


def add_admin_routes(app: web.Application) -> None:
    for op in (*OPERATIONS, OPENAPI):
        assert op.access != "admin" or op.action, f"{op.method} {op.template} needs its audit action"
        app.router.add_route(op.method, op.route, _guarded(op))
