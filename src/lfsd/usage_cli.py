"""``lfsd quota set|show`` and ``lfsd repo usage``: the command line over the use cases of ``core/usage.py``."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from lfsd.cli import _json_option, _one_line_errors, _print_json, _run, _settings, _storage_options, _table, _when
from lfsd.config import Settings
from lfsd.core.audit import Actor
from lfsd.core.repo import RepoPath
from lfsd.core.usage import Usage, UsageDay, UsageService, human, parse_quota, quota_target
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata

T = TypeVar("T")


def _usage(settings: Settings, call: Callable[[UsageService], Awaitable[T]]) -> T:
    async def action(meta: Metadata) -> T:
        return await call(UsageService(meta.usage, meta.audit, utcnow))

    return _run(settings, action)


def _usage_json(usage: Usage) -> dict[str, object]:
    kind = "owner" if "/" not in usage.target else "path"
    source = None if usage.quota_bytes is None else ("own" if usage.own_quota else "default")
    return {
        kind: usage.target,
        "objects": usage.objects,
        "bytes": usage.bytes,
        "last_push": _when(usage.last_push),
        "quota_bytes": usage.quota_bytes,
        "quota_source": source,
    }


def _quota_text(usage: Usage) -> str:
    if usage.quota_bytes is None:
        return "none"
    source = "" if usage.own_quota else " (server default)"
    return f"{usage.quota_bytes} ({human(usage.quota_bytes)}){source}"


@click.group()
def quota() -> None:
    """Storage quotas of repositories (OWNER/NAME) and owners (OWNER)."""


@quota.command("set")
@click.argument("target", metavar="PATH|OWNER")
@click.argument("size", metavar="BYTES")
@_storage_options
@_one_line_errors
def quota_set(target: str, size: str, data_dir: Path | None, database_url: str | None) -> None:
    """Set the quota of PATH or OWNER to BYTES (10000000000, 10G, 10GiB; none or 0 clears it).

    Uploads that would take the repository or owner past it are refused with 507; what is stored stays."""
    parsed = quota_target(target)
    limit = parse_quota(size)
    actor = Actor.cli(getpass.getuser())
    _usage(_settings(data_dir=data_dir, database_url=database_url), lambda s: s.set_quota(actor, parsed, limit))
    shown = "cleared" if limit is None else f"set to {limit} bytes ({human(limit)})"
    click.echo(f"quota of {parsed} {shown}")


@quota.command("show")
@click.argument("target", metavar="PATH|OWNER")
@_json_option
@_storage_options
@_one_line_errors
def quota_show(target: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Show the quota of PATH or OWNER and what it uses."""
    parsed = quota_target(target)
    usage = _usage(_settings(data_dir=data_dir, database_url=database_url), lambda s: s.usage(parsed))
    if as_json:
        _print_json(_usage_json(usage))
        return
    click.echo(f"{'repository' if isinstance(parsed, RepoPath) else 'owner'}: {usage.target}")
    click.echo(f"quota: {_quota_text(usage)}")
    click.echo(f"used: {usage.bytes} ({human(usage.bytes)}) in {usage.objects} objects")


@click.command("usage")
@click.argument("target", metavar="[PATH|OWNER]", required=False)
@click.option("--days", type=click.IntRange(1, 3660), default=None, help="with PATH: also the daily history")
@_json_option
@_storage_options
@_one_line_errors
def repo_usage(
    target: str | None, days: int | None, as_json: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Objects, bytes, last push and quota of every repository, or of PATH or OWNER.

    An object held by several repositories counts in full against each of them."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    parsed = None if target is None else quota_target(target)
    if days is not None and not isinstance(parsed, RepoPath):
        raise click.UsageError("--days needs a repository PATH")

    async def read(service: UsageService) -> tuple[list[Usage], list[UsageDay]]:
        if parsed is None:
            return await service.all_usage(), []
        history = await service.usage_history(parsed, days) if isinstance(parsed, RepoPath) and days else []
        return [await service.usage(parsed)], history

    listed, history = _usage(settings, read)
    if as_json:
        if parsed is None:
            _print_json({"repos": [_usage_json(u) for u in listed]})
        else:
            document = _usage_json(listed[0])
            if days is not None:
                document["history"] = [
                    {"day": d.day.isoformat(), "objects": d.objects, "bytes": d.bytes} for d in history
                ]
            _print_json(document)
        return
    rows = [
        [u.target, str(u.objects), str(u.bytes), human(u.bytes), _when(u.last_push) or "never", _quota_text(u)]
        for u in listed
    ]
    _table(
        rows,
        [
            "PATH" if parsed is None or isinstance(parsed, RepoPath) else "OWNER",
            "OBJECTS",
            "BYTES",
            "SIZE",
            "LAST PUSH",
            "QUOTA",
        ],
    )
    if history:
        click.echo("")
        _table([[d.day.isoformat(), str(d.objects), str(d.bytes)] for d in history], ["DAY", "OBJECTS", "BYTES"])
