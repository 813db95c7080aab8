"""Server administration: users, every repository, the audit log and the status page."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from lfsd.core.audit import AuditQuery
from lfsd.core.errors import BadRequest, Forbidden, InvalidRepoPath
from lfsd.core.repo import RepoPath
from lfsd.core.sessions import Session
from lfsd.ui.forms import actor, form, see_other, signed_in, text
from lfsd.ui.keys import UI
from lfsd.ui.security import PREFIX, page

AUDIT_PAGE = 200


def _admin(request: web.Request) -> Session:
    session = signed_in(request)
    if not session.identity.is_admin:
        raise Forbidden("this page is for server administrators")
    return session


@page("admin_users.html")
async def users_page(request: web.Request) -> dict[str, Any]:
    session = _admin(request)
    users = await request.config_dict[UI].admin.list_users(actor(request, session))
    return {"users": users, "section": "users"}


async def add_user(request: web.Request) -> web.StreamResponse:
    session = _admin(request)
    data = await form(request)
    name = text(data, "name", limit=200).strip()
    password = data.get("password") or None
    await request.config_dict[UI].admin.add_user(
        actor(request, session), name, is_admin=data.get("admin") == "on", password=password
    )
    see_other(f"{PREFIX}/admin")


async def user_action(request: web.Request) -> web.StreamResponse:
    session = _admin(request)
    data = await form(request)
    name = text(data, "name", limit=200)
    action = text(data, "action", limit=20)
    admin, who = request.config_dict[UI].admin, actor(request, session)
    if action in ("disable", "enable"):
        await admin.set_disabled(who, name, action == "disable")
    elif action in ("make-admin", "unmake-admin"):
        await admin.set_admin(who, name, action == "make-admin")
    elif action == "password":
        await admin.set_password(who, name, text(data, "password", limit=1000))
    else:
        raise BadRequest("unknown action")
    see_other(f"{PREFIX}/admin")


@page("admin_repos.html")
async def repos_page(request: web.Request) -> dict[str, Any]:
    session = _admin(request)
    repos = await request.config_dict[UI].admin.list_repos(actor(request, session))
    return {"repos": repos, "section": "repos"}


async def create_repo(request: web.Request) -> web.StreamResponse:
    session = _admin(request)
    data = await form(request)
    try:
        path = RepoPath.parse(text(data, "path", limit=300).strip())
    except InvalidRepoPath as exc:
        raise BadRequest(f"invalid repository path: {exc}") from None
    await request.config_dict[UI].admin.create_repo(actor(request, session), path, public=data.get("public") == "on")
    see_other(f"{PREFIX}/repo/{path}")


@page("admin_audit.html")
async def audit_page(request: web.Request) -> dict[str, Any]:
    session = _admin(request)
    who = request.query.get("actor", "").strip()[:200] or None
    action = request.query.get("action", "").strip()[:64] or None
    days = request.query.get("days", "").strip()
    if days and not days.isdigit():
        raise BadRequest("days is a number")
    since = datetime.now(UTC) - timedelta(days=int(days)) if days else None
    query = AuditQuery(limit=AUDIT_PAGE, actor=who, action=action, since=since)
    entries = await request.config_dict[UI].admin.audit(actor(request, session), query)
    filters = {"actor": who or "", "action": action or "", "days": days}
    return {"entries": entries, "filters": filters, "section": "audit"}


@page("admin_status.html")
async def status_page(request: web.Request) -> dict[str, Any]:
    _admin(request)
    status = request.config_dict[UI].status()
    uptime = int(time.time() - status.started_at.timestamp())
    return {"status": status, "uptime": timedelta(seconds=uptime), "section": "status"}
