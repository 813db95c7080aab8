"""The web UI's part of the composition root: imported only when ``settings.ui`` is on, so a server without the UI
never loads Jinja2, the templates or the UI's modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from lfsd import __version__
from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.admin import Administration
from lfsd.core.auth import Repo
from lfsd.core.lock_service import LockService
from lfsd.core.ports import GitRepositories
from lfsd.core.sessions import SessionService
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.usage import Usage, UsageService
from lfsd.db.catalog import SqlObjectCatalog
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.db.ssh_keys import SqlSshKeys
from lfsd.db.ui_sessions import SqlSessionStore
from lfsd.http.client import client_address
from lfsd.http.inflight import InFlight
from lfsd.ui.keys import UI, Status, UiServices, UsagePoint
from lfsd.ui.web import build_ui


def add_ui(app: web.Application) -> None:
    app.add_subapp("/ui/", build_ui())

    async def to_ui(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("/ui/")

    app.router.add_get("/ui", to_ui)


def open_ui(
    app: web.Application,
    settings: Settings,
    meta: Metadata,
    *,
    access: AccessControl,
    locks: LockService,
    git: GitRepositories,
    inflight: InFlight,
    storage: str,
) -> None:
    """Wire the UI's use cases over the opened metadata (called from the lifespan)."""
    started = datetime.now(UTC)
    admin = Administration(
        meta.users,
        meta.tokens,
        meta.repos,
        meta.locks,
        meta.audit,
        utcnow,
        token_max_days=settings.token_max_days,
        git=git,
    )
    sessions = SessionService(
        SqlSessionStore(meta.db), access.logins, utcnow, timedelta(seconds=settings.ui_session_ttl)
    )

    usage = UsageService(meta.usage, meta.audit, utcnow)

    async def usage_history(repo: Repo, days: int) -> list[UsagePoint]:
        return [(d.day, d.objects, d.bytes) for d in await usage.usage_history(repo.path, days)]

    async def usage_now(repo: Repo) -> Usage:
        return await usage.usage(repo.path)

    def status() -> Status:
        return Status(__version__, storage, meta.db.dialect, started, inflight.active)

    app[UI] = UiServices(
        settings=settings,
        sessions=sessions,
        admin=admin,
        access=access,
        locks=locks,
        repos=meta.repos,
        catalog=SqlObjectCatalog(meta.db),
        address=client_address,
        status=status,
        usage=usage_history,
        usage_now=usage_now,
        ssh_keys=SshKeyAdministration(meta.users, SqlSshKeys(meta.db), meta.audit, utcnow),
    )
