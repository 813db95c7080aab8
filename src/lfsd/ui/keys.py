"""What the UI's handlers reach: the use cases, wired by the composition root (``lfsd.ui_root``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from aiohttp import web

from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.admin import Administration
from lfsd.core.auth import Repo
from lfsd.core.catalog import ObjectCatalog
from lfsd.core.directory import RepoAdmin
from lfsd.core.lock_service import LockService
from lfsd.core.sessions import Session, SessionService
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.usage import Usage

# The per-day history of a repository (oldest first): ``(day, objects, bytes)``. Another module records it; the UI
# only draws it, through this narrow port.
UsagePoint = tuple[date, int, int]
UsageHistory = Callable[[Repo, int], Awaitable[Sequence[UsagePoint]]]
# What a repository holds now and the quota that applies (``UsageService.usage``).
UsageNow = Callable[[Repo], Awaitable[Usage]]


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    storage: str
    database: str
    started_at: datetime
    transfers_in_flight: int


@dataclass(frozen=True, slots=True)
class UiServices:
    settings: Settings
    sessions: SessionService
    admin: Administration
    access: AccessControl
    locks: LockService
    repos: RepoAdmin
    catalog: ObjectCatalog
    address: Callable[[web.Request], str]  # the client's address, as the API's throttle sees it
    status: Callable[[], Status]
    usage: UsageHistory | None = None
    usage_now: UsageNow | None = None
    ssh_keys: SshKeyAdministration | None = None


UI: Final = web.AppKey("ui_services", UiServices)
SESSION: Final = web.RequestKey("ui_session", Session)
SESSION_ID: Final = web.RequestKey("ui_session_id", str)
