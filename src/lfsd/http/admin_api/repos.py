"""``/api/v1/repos``: repositories, their grants and their locks. Sub-resources follow ``/-/`` (GitLab's
convention): no repository path segment can be ``-``, so ``acme/game/-/grants`` is never a repository."""

from __future__ import annotations

from aiohttp import web

from lfsd.core.audit import Actor
from lfsd.core.auth import Permission
from lfsd.core.directory import GrantInfo, RepoInfo
from lfsd.core.errors import Unprocessable
from lfsd.core.locks import LockId
from lfsd.core.repo import RepoPath
from lfsd.http.admin_api import render
from lfsd.http.admin_api.edge import (
    actor,
    admin,
    cursor_grant,
    cursor_id,
    cursor_path,
    encode_cursor,
    limit,
    no_content,
    page,
    repo_path,
    respond,
    user_name,
)
from lfsd.http.admin_api.models import GrantChange, NewRepo, RepoChange, body


async def _shown(request: web.Request, who: Actor, path: RepoPath, status: int = 200) -> web.Response:
    info, _ = await admin(request).show_repo(who, path)
    return respond(render.repo(info), status)


async def list_repos(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    repos = await admin(request).list_repos(who, after=cursor_path(request), limit=size + 1)

    def key(info: RepoInfo) -> tuple[str]:
        return (str(info.repo.path),)

    return page("repos", repos, size, key, render.repo)


async def create_repo(request: web.Request) -> web.Response:
    who = await actor(request)
    new = await body(request, NewRepo, "repository")
    path = RepoPath.parse(new.path)
    await admin(request).create_repo(who, path, public=new.public)
    response = await _shown(request, who, path, 201)
    response.headers["Location"] = f"/api/v1/repos/{path}"
    return response


async def show_repo(request: web.Request) -> web.Response:
    return await _shown(request, await actor(request), repo_path(request))


async def change_repo(request: web.Request) -> web.Response:
    who = await actor(request)
    path = repo_path(request)
    change = await body(request, RepoChange, "repository change")
    if change.path is None and change.public is None and change.locking is None:
        raise Unprocessable("invalid repository change: nothing to change (path, public or locking)")
    if change.path is not None:
        new_path = RepoPath.parse(change.path)
        if new_path != path:
            await admin(request).rename_repo(who, path, new_path)
            path = new_path
    if change.public is not None:
        await admin(request).set_public(who, path, change.public)
    if change.locking is not None:
        await admin(request).set_locking(who, path, change.locking)
    return await _shown(request, who, path)


async def delete_repo(request: web.Request) -> web.Response:
    await admin(request).delete_repo(await actor(request), repo_path(request))
    return no_content()


async def repo_grants(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    grants = await admin(request).grants(who, repo_path(request), after=cursor_grant(request), limit=size + 1)

    def key(info: GrantInfo) -> tuple[str, str]:
        return (str(info.repo_path), info.user_name)

    return page("grants", grants, size, key, render.grant)


async def set_grant(request: web.Request) -> web.Response:
    who = await actor(request)
    path, name = repo_path(request), user_name(request)
    change = await body(request, GrantChange, "grant")
    permission = Permission.parse(change.permission)
    await admin(request).grant(who, path, name, permission)
    return respond({"repo": str(path), "user": name, "permission": permission.name.lower()})


async def revoke_grant(request: web.Request) -> web.Response:
    who = await actor(request)
    await admin(request).revoke(who, repo_path(request), user_name(request))
    return no_content()


async def repo_locks(request: web.Request) -> web.Response:
    who = await actor(request)
    size = limit(request)
    locks, more = await admin(request).list_locks(who, repo_path(request), after_id=cursor_id(request) or 0, limit=size)
    document: dict[str, object] = {"locks": [render.lock(item) for item in locks]}
    if more and locks:
        document["next_cursor"] = encode_cursor((locks[-1].id,))
    return respond(document)


async def force_unlock(request: web.Request) -> web.Response:
    who = await actor(request)
    await admin(request).force_unlock(who, repo_path(request), LockId.parse(request.match_info["id"]))
    return no_content()
