"""A repository's page: its objects (paged, sorted), locks, grants, settings and usage chart; and its actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lfsd.core.auth import Permission, Repo
from lfsd.core.catalog import ObjectQuery, ObjectSort, decode_cursor, object_page
from lfsd.core.errors import BadRequest, InvalidRepoPath, NotFound
from lfsd.core.locks import LockId
from lfsd.core.repo import RepoPath
from lfsd.core.sessions import Session
from lfsd.core.usage import Usage
from lfsd.ui.account import clone_url
from lfsd.ui.chart import usage_chart
from lfsd.ui.forms import actor, form, see_other, signed_in, text
from lfsd.ui.keys import UI
from lfsd.ui.security import PREFIX, page

CHART_DAYS = 90
LOCKS_SHOWN = 100


def _path(value: str) -> RepoPath:
    try:
        return RepoPath.parse(value)
    except InvalidRepoPath:
        raise NotFound("repository not found") from None


async def _open(request: web.Request, session: Session, value: str) -> tuple[Repo, Permission]:
    services = request.config_dict[UI]
    repo = await services.access.authorize(session.identity, _path(value), Permission.READ)
    return repo, await services.access.permission(session.identity, repo)


def repo_url(path: RepoPath | str) -> str:
    return f"{PREFIX}/repo/{path}"


def quota_used(usage: Usage | None) -> int | None:
    """The share of the quota in use, in whole percent (rounded down, so 100 means full or over)."""
    if usage is None or usage.quota_bytes is None:
        return None
    return usage.bytes * 100 // usage.quota_bytes


@page("repo.html")
async def repo_page(request: web.Request) -> dict[str, Any]:
    session = signed_in(request)
    services = request.config_dict[UI]
    repo, granted = await _open(request, session, request.match_info["path"])
    info = await services.repos.repo_info(repo.path)
    if info is None:
        raise NotFound("repository not found")
    sort = ObjectSort.SIZE if request.query.get("sort") == "size" else ObjectSort.DATE
    descending = request.query.get("order", "desc") != "asc"
    cursor = request.query.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    page = await object_page(services.catalog, repo.id, ObjectQuery(sort, descending, after, 50))
    locks = (
        await services.locks.find(repo, path=None, lock_id=None, cursor=None, limit=LOCKS_SHOWN)
        if repo.locking_enabled
        else None
    )
    is_admin = granted >= Permission.ADMIN
    grants = await services.repos.grants(repo=repo) if is_admin else []
    history = await services.usage(repo, CHART_DAYS) if services.usage is not None else []
    usage = await services.usage_now(repo) if services.usage_now is not None else None
    return {
        "info": info,
        "repo": repo,
        "url": repo_url(repo.path),
        "clone_url": clone_url(request, str(repo.path)),
        "page": page,
        "sort": sort.value,
        "order": "desc" if descending else "asc",
        "locks": locks,
        "grants": grants,
        "repo_admin": is_admin,
        "server_admin": session.identity.is_admin,
        "me": session.identity,
        "chart": usage_chart(history),  # rendered with |safe: built from numbers and escaped text only
        "has_history": services.usage is not None,
        "usage": usage,  # the counters and the quota that applies (None: not wired)
        "quota_used": quota_used(usage),
    }


@page("confirm_unlock.html")
async def confirm_unlock(request: web.Request) -> dict[str, Any]:
    session = signed_in(request)
    services = request.config_dict[UI]
    repo, _ = await _open(request, session, request.query.get("repo", ""))
    lock_id = LockId.parse(request.match_info["lock_id"])
    page = await services.locks.find(repo, path=None, lock_id=lock_id, cursor=None, limit=1)
    if not page.locks:
        raise NotFound("lock not found")
    lock = page.locks[0]
    return {"repo": repo, "lock": lock, "force": lock.owner_id != session.identity.user_id, "url": repo_url(repo.path)}


async def unlock(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    services = request.config_dict[UI]
    repo, granted = await _open(request, session, text(data, "repo", limit=300))
    lock_id = LockId.parse(text(data, "lock_id", limit=20))
    await services.locks.unlock(
        session.identity,
        repo,
        lock_id,
        force=data.get("force") == "1",
        granted=granted,
        address=services.address(request),
    )
    see_other(repo_url(repo.path) + "#locks")


async def grant(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    repo, _ = await _open(request, session, text(data, "repo", limit=300))
    user = text(data, "user", limit=200).strip()
    level = text(data, "permission", limit=10)
    admin = request.config_dict[UI].admin
    if level == "none":
        await admin.revoke(actor(request, session), repo.path, user)
    else:
        try:
            permission = Permission.parse(level)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        await admin.grant(actor(request, session), repo.path, user, permission)
    see_other(repo_url(repo.path) + "#grants")


async def settings(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    repo, _ = await _open(request, session, text(data, "repo", limit=300))
    admin = request.config_dict[UI].admin
    who = actor(request, session)
    public, locking = data.get("public") == "on", data.get("locking") == "on"
    if public != repo.is_public:
        await admin.set_public(who, repo.path, public)
    if locking != repo.locking_enabled:
        await admin.set_locking(who, repo.path, locking)
    see_other(repo_url(repo.path) + "#settings")


async def rename(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    repo, _ = await _open(request, session, text(data, "repo", limit=300))
    try:
        new_path = RepoPath.parse(text(data, "new_path", limit=300).strip())
    except InvalidRepoPath as exc:
        raise BadRequest(f"invalid repository path: {exc}") from None
    await request.config_dict[UI].admin.rename_repo(actor(request, session), repo.path, new_path)
    see_other(repo_url(new_path))


async def delete(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    repo, _ = await _open(request, session, text(data, "repo", limit=300))
    if data.get("confirm", "").strip() != str(repo.path):
        raise BadRequest(f"type the repository's path ({repo.path}) to confirm its deletion")
    await request.config_dict[UI].admin.delete_repo(actor(request, session), repo.path)
    see_other(f"{PREFIX}/")
