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
from lfsd.core.gc import Collector, GcOptions, GcReport, GcStore
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.db.metadata import Metadata
from lfsd.observability.gc_metrics import GcMetrics
from lfsd.resources import open_store


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="report what would be deleted (objects and bytes); change nothing")
@click.option(
    "--grace", type=int, default=None, metavar="SECONDS", help="keep objects unreferenced for less [env LFSD_GC_GRACE]"
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document (default when not a terminal)")
@click.option("--pushgateway", default=None, metavar="URL", help="push the lfsd_gc_* metrics to this Pushgateway")
@click.option("--storage", "storage_url", default=None, help="file:///PATH or s3://BUCKET[/PREFIX] [env LFSD_STORAGE]")
@_storage_options
@_one_line_errors
def gc(
    dry_run: bool,
    grace: int | None,
    as_json: bool,
    pushgateway: str | None,
    storage_url: str | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Delete the objects no repository has held for the grace period (docs/operations.md).

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

    async def action(meta: Metadata) -> GcReport:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            store: GcStore = opened.store
            holder = f"gc-{secrets.token_hex(12)}"
            collector = Collector(SqlGcIndex(meta.db), store, utcnow, holder, metrics)
            if json_out or not sys.stderr.isatty():
                return await collector.run(options)
            with _Bar(dry_run) as bar:
                return await collector.run(options, bar.total, bar.update)

    report = _run(settings, action)
    if pushgateway is not None and not dry_run:
        push_to_gateway(pushgateway, job="lfsd_gc", registry=metrics.registry)
    if json_out:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
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
