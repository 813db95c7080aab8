"""``/api/v1/audit``: the audit log, newest first, filtered like ``lfsd audit``."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from lfsd.core.audit import AuditEntry, AuditQuery
from lfsd.core.errors import Unprocessable
from lfsd.http.admin_api import render
from lfsd.http.admin_api.edge import actor, admin, cursor_id, limit, page

MAX_FILTER_LENGTH = 200


def _filter(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER_LENGTH or not value.isprintable():
        raise Unprocessable(f"invalid {name}: at most {MAX_FILTER_LENGTH} printable characters")
    return value


def _since(request: web.Request) -> datetime | None:
    value = _filter(request, "since")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable("invalid since: expected an ISO 8601 time, e.g. 2026-11-26T14:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def list_audit(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    query = AuditQuery(
        limit=size + 1,
        actor=_filter(request, "actor"),
        action=_filter(request, "action"),
        since=_since(request),
        before_id=cursor_id(request),
    )
    entries = await admin(request).audit(who, query)

    def key(entry: AuditEntry) -> tuple[int]:
        return (entry.id,)

    return page("entries", entries, size, key, render.audit)
