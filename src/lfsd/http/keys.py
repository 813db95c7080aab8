"""Typed application state: the composition root fills these, handlers read them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.lock_service import LockService
from lfsd.core.ports import GitRepositories, GitRpc
from lfsd.core.service import LfsService
from lfsd.core.signing import LinkSigner
from lfsd.http.inflight import InFlight
from lfsd.http.state import HEALTH
from lfsd.observability.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
ACCESS = web.AppKey("access", AccessControl)
SERVICE = web.AppKey("service", LfsService)
SIGNER = web.AppKey("signer", LinkSigner)
INFLIGHT = web.AppKey("inflight", InFlight)
LOCKS = web.AppKey("locks", LockService)
__all__ = ["HEALTH"]
METRICS = web.AppKey("metrics", Metrics)
Probe = Callable[[], Awaitable[None]]
PROBES: web.AppKey[dict[str, Probe]] = web.AppKey("probes")
SCRAPE: web.AppKey[Probe] = web.AppKey("scrape")
GIT_REPOS: web.AppKey[GitRepositories] = web.AppKey("git_repos")
GIT_RPC: web.AppKey[GitRpc] = web.AppKey("git_rpc")
