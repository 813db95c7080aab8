"""``/api/v1/repos/{repo}/-/usage``, ``/api/v1/owners/{owner}/usage`` and their quotas: the use cases of
``core/usage.py`` (``UsageService``), for server admins. Setting or clearing a quota is audited as ``quota.set``, as the
command line's ``lfsd quota set`` is."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from lfsd.core.errors import Unprocessable
from lfsd.core.repo import RepoPath
from lfsd.core.usage import MAX_HISTORY_DAYS, Usage, UsageDay, UsageService, parse_owner
from lfsd.http.admin_api.edge import USAGE, actor, no_content, repo_path, respond
from lfsd.http.admin_api.models import QuotaChange, body
from lfsd.http.admin_api.render import when

_DAYS_DIGITS: Final = len(str(MAX_HISTORY_DAYS))


def _service(request: web.Request) -> UsageService:
    return request.app[USAGE]


def _owner(request: web.Request) -> str:
    return parse_owner(request.match_info["owner"])


def _days(request: web.Request) -> int | None:
    """``?days=``: 1 to ``MAX_HISTORY_DAYS``; 422 otherwise; None when absent (no history asked for)."""
    text = request.query.get("days")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > _DAYS_DIGITS or not 1 <= int(text) <= MAX_HISTORY_DAYS:
        raise Unprocessable(f"invalid days: {text[:20]!r} (1 to {MAX_HISTORY_DAYS})")
    return int(text)


def render_usage(usage: Usage) -> dict[str, object]:
    """The shape ``lfsd repo usage --json`` and ``lfsd quota show --json`` print."""
    kind = "path" if "/" in usage.target else "owner"
    source = None if usage.quota_bytes is None else ("own" if usage.own_quota else "default")
    return {
        kind: usage.target,
        "objects": usage.objects,
        "bytes": usage.bytes,
        "last_push": when(usage.last_push),
        "quota_bytes": usage.quota_bytes,
        "quota_source": source,
    }


def render_day(day: UsageDay) -> dict[str, object]:
    return {"day": day.day.isoformat(), "objects": day.objects, "bytes": day.bytes}


async def repo_usage(request: web.Request) -> web.Response:
    path = repo_path(request)
    days = _days(request)
    service = _service(request)
    document = render_usage(await service.usage(path))
    if days is not None:
        document["history"] = [render_day(day) for day in await service.usage_history(path, days)]
    return respond(document)


async def owner_usage(request: web.Request) -> web.Response:
    return respond(render_usage(await _service(request).usage(_owner(request))))


async def _set(request: web.Request, target: RepoPath | str, quota_bytes: int | None) -> web.Response:
    service = _service(request)
    await service.set_quota(await actor(request), target, quota_bytes)
    return respond(render_usage(await service.usage(target)))


async def set_repo_quota(request: web.Request) -> web.Response:
    path = repo_path(request)
    change = await body(request, QuotaChange, "quota")
    return await _set(request, path, change.quota_bytes)


async def clear_repo_quota(request: web.Request) -> web.Response:
    await _service(request).set_quota(await actor(request), repo_path(request), None)
    return no_content()


async def set_owner_quota(request: web.Request) -> web.Response:
    owner = _owner(request)
    change = await body(request, QuotaChange, "quota")
    return await _set(request, owner, change.quota_bytes)


async def clear_owner_quota(request: web.Request) -> web.Response:
    await _service(request).set_quota(await actor(request), _owner(request), None)
    return no_content()
