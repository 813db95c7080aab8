"""URL layout: ``/<repo path>[.git]/info/lfs/...``, nested repository paths allowed."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.http.keys import SETTINGS

REPO_PATTERN: Final = r"{repo:[^{}]+?}"
BATCH_ROUTE: Final = f"/{REPO_PATTERN}/info/lfs/objects/batch"
OBJECT_ROUTE: Final = f"/{REPO_PATTERN}/info/lfs/objects/{{oid:[^/]+}}"
VERIFY_ROUTE: Final = f"/{REPO_PATTERN}/info/lfs/objects/{{oid:[^/]+}}/verify"


def repo_path(request: web.Request) -> RepoPath:
    return RepoPath.parse(request.match_info["repo"])


def oid_of(request: web.Request) -> Oid:
    return Oid.parse(request.match_info["oid"])


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_url
    return configured if configured is not None else f"{request.scheme}://{request.host}"
