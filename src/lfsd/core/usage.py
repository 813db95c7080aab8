"""Storage usage and quotas: counters per repository and per owner, their daily history, and the quota rules.

Usage is counted per repository: an object held by two repositories counts, in full, against each of them (and
against each owner once per repository of theirs that holds it), although the store keeps its bytes once. That keeps
a repository's figure independent of what other repositories happen to hold, so it never changes behind its back.

The counters are kept by the index in the transaction of every link and unlink (``db/usage.py``); this module holds
the values, the rules and the use cases every front end calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Protocol

from lfsd.core.audit import Actor, AuditLog
from lfsd.core.audited import Audited
from lfsd.core.errors import BadRequest, InsufficientStorage, NotFound
from lfsd.core.repo import RepoPath

MAX_OWNER_LENGTH: Final = 100  # one repository path segment (core/repo.py)
MAX_HISTORY_DAYS: Final = 3660
_OWNER_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_UNITS: Final = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
_SIZE_RE: Final = re.compile(r"(\d+)\s*([KMGTP]?)(I?)B?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UsageDay:
    """What a repository held at the end of ``day`` (UTC), or now for today."""

    day: date
    objects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    """What a repository or an owner holds, and the quota that applies (None: unlimited).

    ``quota_bytes`` is the effective quota; ``own_quota`` says whether it was set for this repository or owner
    (False: the server-wide default, for a repository)."""

    target: str
    objects: int
    bytes: int
    last_push: datetime | None
    quota_bytes: int | None
    own_quota: bool


def parse_owner(value: str) -> str:
    if _OWNER_RE.fullmatch(value) is None or value.endswith((".", ".git")):
        raise NotFound(f"no such owner or repository {value!r}")
    return value


def parse_quota(value: str) -> int | None:
    """Bytes, with an optional decimal (10G) or binary (10GiB) suffix; ``none`` or 0 clears the quota (None)."""
    text = value.strip()
    if text.lower() in ("none", "0"):
        return None
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise BadRequest(f"not a size: {value!r} (use bytes, e.g. 10000000000, 10G or 10GiB, or none)")
    number, unit, binary = match.groups()
    scale = 1024 ** list(_UNITS).index(unit.upper()) if binary else _UNITS[unit.upper()]
    if binary and not unit:
        raise BadRequest(f"not a size: {value!r}")
    quota = int(number) * scale
    if quota >= 2**63:
        raise BadRequest(f"quota too large: {value!r}")
    return quota or None


def human(size: int) -> str:
    """Bytes for people: 1.5 GB (decimal units, as disks are sold), and the exact figure below 1 kB."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def over_quota(what: str, used: int, quota: int, adding: int) -> InsufficientStorage:
    """The refusal a client shows: which quota, how much is used and how much more was asked for."""
    return InsufficientStorage(
        f"{what} is over its storage quota: {human(used)} of {human(quota)} used ({used} of {quota} bytes), "
        f"this push needs {human(adding)} ({adding} bytes) more; remove objects or ask an administrator"
    )


def check_fits(usage: Usage, adding: int) -> None:
    """Raise the 507 refusal when ``adding`` more bytes would take ``usage`` past its quota."""
    if adding > 0 and usage.quota_bytes is not None and usage.bytes + adding > usage.quota_bytes:
        raise over_quota(usage.target, usage.bytes, usage.quota_bytes, adding)


def fill_history(known: Sequence[UsageDay], today: date, days: int) -> list[UsageDay]:
    """One entry per day, oldest first, for the ``days`` days up to ``today``: a day without a change carries the
    figures of the last day before it that had one (``known``: the rows in and just before the window)."""
    by_day = {entry.day: entry for entry in known}
    first = today - timedelta(days=days - 1)
    before = [entry for entry in known if entry.day < first]
    objects, size = (before[-1].objects, before[-1].bytes) if before else (0, 0)
    filled: list[UsageDay] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day in by_day:
            objects, size = by_day[day].objects, by_day[day].bytes
        filled.append(UsageDay(day, objects, size))
    return filled


class UsageStore(Protocol):
    """Read and set the counters the index keeps (``db/usage.py``)."""

    async def repo_usage(self, path: RepoPath) -> Usage | None: ...

    async def owner_usage(self, owner: str) -> Usage: ...

    async def all_repo_usage(self) -> list[Usage]: ...

    async def history(self, path: RepoPath, since: date) -> list[UsageDay] | None:
        """The recorded days from ``since`` on, plus the last one before it; None when the repository is missing."""

    async def set_repo_quota(self, path: RepoPath, quota_bytes: int | None) -> bool:
        """False when there is no such repository."""

    async def set_owner_quota(self, owner: str, quota_bytes: int | None) -> None: ...

    async def totals(self) -> tuple[int, int]:
        """Objects and bytes over every repository (deduplicated objects counted once per repository)."""


class QuotaGate(Protocol):
    async def check_upload(self, repo_id: int, adding: int) -> None:
        """Raise ``InsufficientStorage`` when ``adding`` more bytes would exceed the repository's or owner's quota."""


def quota_target(value: str) -> RepoPath | str:
    """``OWNER/NAME`` (a repository) or ``OWNER``."""
    return RepoPath.parse(value) if "/" in value else parse_owner(value)


class UsageService:
    """The use cases: usage and history for every front end, quotas set by server administrators (audited)."""

    def __init__(self, store: UsageStore, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock
        self._audited = Audited(audit, clock)

    async def usage_history(self, repo: RepoPath, days: int) -> list[UsageDay]:
        """One ``UsageDay`` per day for the last ``days`` days (today included), oldest first, for a chart."""
        if not 1 <= days <= MAX_HISTORY_DAYS:
            raise BadRequest(f"days must be between 1 and {MAX_HISTORY_DAYS}")
        today = self._clock().date()
        known = await self._store.history(repo, today - timedelta(days=days - 1))
        if known is None:
            raise NotFound(f"no repository {repo}")
        return fill_history(known, today, days)

    async def usage(self, target: RepoPath | str) -> Usage:
        if isinstance(target, RepoPath):
            found = await self._store.repo_usage(target)
            if found is None:
                raise NotFound(f"no repository {target}")
            return found
        return await self._store.owner_usage(target)

    async def all_usage(self) -> list[Usage]:
        return await self._store.all_repo_usage()

    async def set_quota(self, actor: Actor, target: RepoPath | str, quota_bytes: int | None) -> None:
        """Set (None: clear) the quota of a repository or owner. Existing data over a lowered quota stays; only
        further uploads are refused."""

        async def work() -> None:
            if isinstance(target, RepoPath):
                if not await self._store.set_repo_quota(target, quota_bytes):
                    raise NotFound(f"no repository {target}")
            else:
                await self._store.set_owner_quota(target, quota_bytes)

        action = "quota.set"
        await self._audited.run(
            actor,
            action,
            str(target),
            work,
            allowed=actor.is_admin,
            refusal=f"{action} needs a server administrator",
            details={"quota_bytes": quota_bytes},
        )
