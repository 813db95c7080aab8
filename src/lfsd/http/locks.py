"""The File Locking API: ``…/info/lfs/locks``, ``locks/verify`` and ``locks/{id}/unlock``."""

from __future__ import annotations

from aiohttp import web

from lfsd.core.auth import Identity, Permission, Repo
from lfsd.core.errors import Unauthorized
from lfsd.core.locks import LockExists, LockId, LockNotFound, LockPath, RefName
from lfsd.http.auth import identify
from lfsd.http.body import read_body
from lfsd.http.client import client_address
from lfsd.http.errors import lfs_json, request_id
from lfsd.http.keys import ACCESS, LOCKS
from lfsd.http.media import check_accept, check_content_type
from lfsd.http.paths import repo_path
from lfsd.http.wire import WireRef, parse_create_lock, parse_unlock, parse_verify_locks, render_lock

MAX_LOCK_BODY = 64 * 1024


async def _enter(request: web.Request, needed: Permission) -> tuple[Identity | None, Repo]:
    path = repo_path(request)
    check_accept(request)
    identity = await identify(request)
    repo = await request.app[ACCESS].authorize(identity, path, needed)
    request.app[LOCKS].require_enabled(repo)
    return identity, repo


def _user(identity: Identity | None) -> Identity:
    if identity is None:  # unreachable: write access is never anonymous
        raise Unauthorized()
    return identity


def _ref(ref: WireRef | None) -> RefName | None:
    return RefName.parse(ref.name) if ref is not None else None


async def _json(request: web.Request) -> bytes:
    check_content_type(request)
    return await read_body(request, MAX_LOCK_BODY)


async def create_lock(request: web.Request) -> web.Response:
    identity, repo = await _enter(request, Permission.WRITE)
    body = parse_create_lock(await _json(request))
    path, ref = LockPath.parse(body.path), _ref(body.ref)
    try:
        lock = await request.app[LOCKS].create(_user(identity), repo, path, ref)
    except LockExists as exc:
        payload = {"lock": render_lock(exc.lock), "message": exc.message, "request_id": request_id(request)}
        return lfs_json(payload, 409)
    return lfs_json({"lock": render_lock(lock)}, 201)


async def list_locks(request: web.Request) -> web.Response:
    _, repo = await _enter(request, Permission.READ)
    query = request.query
    path = LockPath.parse(query["path"]) if query.get("path") else None
    try:
        lock_id = LockId.parse(query["id"]) if query.get("id") else None
    except LockNotFound:
        return lfs_json({"locks": []})  # no lock has an id outside the column's range
    page = await request.app[LOCKS].find(
        repo, path=path, lock_id=lock_id, cursor=query.get("cursor"), limit=query.get("limit")
    )
    body: dict[str, object] = {"locks": [render_lock(lock) for lock in page.locks]}
    if page.next_cursor is not None:
        body["next_cursor"] = page.next_cursor
    return lfs_json(body)


async def verify_locks(request: web.Request) -> web.Response:
    identity, repo = await _enter(request, Permission.WRITE)
    body = parse_verify_locks(await _json(request))
    _ref(body.ref)  # not stored, but judged like any other: one rule for refs
    ours, theirs, next_cursor = await request.app[LOCKS].verify(
        _user(identity), repo, cursor=body.cursor, limit=body.limit
    )
    payload: dict[str, object] = {
        "ours": [render_lock(lock) for lock in ours],
        "theirs": [render_lock(lock) for lock in theirs],
    }
    if next_cursor is not None:
        payload["next_cursor"] = next_cursor
    return lfs_json(payload)


async def unlock(request: web.Request) -> web.Response:
    identity, repo = await _enter(request, Permission.WRITE)
    lock_id = LockId.parse(request.match_info["id"])
    body = parse_unlock(await _json(request))
    _ref(body.ref)
    user = _user(identity)
    granted = await request.app[ACCESS].permission(user, repo)
    lock = await request.app[LOCKS].unlock(
        user, repo, lock_id, force=body.force, granted=granted, address=client_address(request)
    )
    return lfs_json({"lock": render_lock(lock)})


def add_lock_routes(app: web.Application, repo_pattern: str) -> None:
    base = f"/{repo_pattern}/info/lfs/locks"
    app.router.add_get(base, list_locks, allow_head=False)
    app.router.add_post(base, create_lock)
    app.router.add_post(f"{base}/verify", verify_locks)
    app.router.add_post(base + "/{id:[^/]+}/unlock", unlock)
