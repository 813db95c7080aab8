"""``lfsd gc``: the command line of the garbage collector (``lfsd.core.gc``), registered in ``cli.py``."""

from __future__ import annotations

import json
import secrets
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Never

import click
from prometheus_client import push_to_gateway
from tqdm import tqdm

from lfsd.cli import InvalidFailure, _one_line_errors, _run, _settings, _storage_options
from lfsd.config import Settings
from lfsd.core.gc import Collector, GcOptions, GcReport, GcStore
from lfsd.core.reachability import Unreachable, unlink_unreachable
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.metadata import Metadata
from lfsd.git.pointers import GitReferencedObjects
from lfsd.git.repositories import BareRepositories
from lfsd.observability.gc_metrics import GcMetrics
from lfsd.resources import open_store


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="report what would be deleted (objects and bytes); change nothing")
@click.option(
    "--grace", type=int, default=None, metavar="SECONDS", help="keep objects unreferenced for less [env LFSD_GC_GRACE]"
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document (default when not a terminal)")
@click.option(
    "--unreachable",
    is_flag=True,
    help="first unlink, from each repository whose Git lfsd hosts, the objects no ref points to (collected later)",
)
@click.option("--pushgateway", default=None, metavar="URL", help="push the lfsd_gc_* metrics to this Pushgateway")
@click.option("--storage", "storage_url", default=None, help="file:///PATH or s3://BUCKET[/PREFIX] [env LFSD_STORAGE]")
@_storage_options
@_one_line_errors
def gc(
    dry_run: bool,
    grace: int | None,
    as_json: bool,
    unreachable: bool,
    pushgateway: str | None,
    storage_url: str | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Delete the objects no repository has held for the grace period (docs/operations.md).

    With --unreachable, each repository whose Git lfsd hosts first loses the objects that no ref of it points to
    and that it has held for the grace period; they are collected one grace period later, like any other garbage.

    Exit status: 0 done (or, with --dry-run, reported); 4 another collector holds the lease (nothing was done);
    6 a grace period shorter than the link lifetime; 1 gc could not run; 2 bad usage.
    """
    settings = _settings(storage=storage_url, data_dir=data_dir, database_url=database_url)
    grace_seconds = settings.gc_grace if grace is None else grace
    if grace_seconds < settings.link_ttl:
        raise InvalidFailure(
            f"--grace {grace_seconds} is shorter than link_ttl ({settings.link_ttl} s): a link handed out before could"
            " still upload or download the object"
        )
    options = GcOptions(
        grace=timedelta(seconds=grace_seconds), dry_run=dry_run, lease=timedelta(seconds=settings.gc_lease)
    )
    json_out = as_json or not sys.stdout.isatty()
    metrics = GcMetrics()

    async def action(meta: Metadata) -> tuple[GcReport, list[Unreachable]]:
        unlinked = await _unlink_unreachable(settings, meta, options) if unreachable else []
        return await _collect(meta), unlinked

    async def _collect(meta: Metadata) -> GcReport:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            store: GcStore = opened.store
            holder = f"gc-{secrets.token_hex(12)}"
            collector = Collector(SqlGcIndex(meta.db), store, utcnow, holder, metrics)
            if json_out or not sys.stderr.isatty():
                return await collector.run(options)
            with _Bar(dry_run) as bar:
                return await collector.run(options, bar.total, bar.update)

    report, unlinked = _run(settings, action)
    if pushgateway is not None and not dry_run:
        push_to_gateway(pushgateway, job="lfsd_gc", registry=metrics.registry)
    if json_out:
        document = report.as_json()
        if unreachable:
            document["unreachable"] = [
                {
                    "repo": str(item.repo),
                    "objects": [str(oid) for oid in item.unlinked],
                    "relinked": item.relinked,
                }
                for item in unlinked
            ]
        click.echo(json.dumps(document, indent=2))
    else:
        for item in unlinked:
            verb = "would unlink" if dry_run else "unlinked"
            click.echo(f"{item.repo}: {verb} {len(item.unlinked)} objects no ref points to")
        verb = "would delete" if dry_run else "deleted"
        click.echo(
            f"{verb} {report.objects} objects ({report.bytes / 1e6:.1f} MB) unreferenced for {grace_seconds} s or more"
            f" in {report.seconds:.1f} s; {report.marked} objects newly unreferenced (collectable one grace period on)"
        )


class _Bar:
    """tqdm on stderr over the candidates, as fsck shows itself."""

    def __init__(self, dry_run: bool) -> None:
        self._bar: tqdm[Never] | None = None
        self._desc = "would delete" if dry_run else "deleting"
        self._done = 0

    def total(self, objects: int, size: int) -> None:
        self._bar = tqdm(total=objects, unit="obj", unit_scale=True, file=sys.stderr, desc=self._desc)

    def update(self, objects: int, size: int) -> None:
        if self._bar is not None:
            self._bar.update(objects - self._done)
            self._bar.set_postfix_str(f"{size / 1e6:.1f} MB", refresh=False)
        self._done = objects

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


async def _unlink_unreachable(settings: Settings, meta: Metadata, options: GcOptions) -> list[Unreachable]:
    """Every repository whose Git lfsd hosts (with refs): its unreferenced objects held for the grace period."""
    refs = GitReferencedObjects(BareRepositories(settings.effective_git_root))
    index = SqlIndexInventory(meta.db)
    cutoff = utcnow() - options.grace
    found: list[Unreachable] = []
    after = None
    while page := await meta.repos.list_repos(after=after, limit=500):
        for info in page:
            result = await unlink_unreachable(index, refs, info.repo.path, cutoff, dry_run=options.dry_run)
            if result.hosted:
                found.append(result)
        after = page[-1].repo.path
    return found
