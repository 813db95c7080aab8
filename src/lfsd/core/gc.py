"""Garbage collection: remove the objects no repository holds, without ever taking a live one.

The safety argument is written once, in docs/operations.md ("Garbage collection"); in short:

* an objects row is garbage when no repository links it, a collector has seen it so (``unlinked_at``) and no upload
  batch has named it (``touched_at``) for the grace period, which is at least the lifetime of a transfer link;
* the collector claims candidates in one conditional statement that re-checks all of that and locks the rows, deletes
  their bytes while the locks hold, then deletes the rows and commits: one transaction per page of candidates;
* a link locks its object rows first and, for a row that is new or was seen unreferenced, checks the store before it
  links: it waits for a collector's transaction and then sees the bytes gone, or the collector waits for it and then
  sees the link. A crash rolls the rows back: rows no repository holds, whose bytes the next link checks and the next
  run removes.

This module is the order of those steps; the statements live in ``lfsd.db.gc``, the deletes in the stores.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from lfsd.core.errors import Conflict
from lfsd.core.oid import Oid

PAGE = 200  # candidates per transaction: one claim, one bulk delete of bodies, one delete of rows
LEASE_NAME = "gc"


@dataclass(frozen=True, slots=True)
class Garbage:
    oid: Oid
    size: int


class GcIndex(Protocol):
    """The object index as the collector sees it (``lfsd.db.gc.SqlGcIndex``)."""

    async def acquire(self, holder: str, now: datetime, lease: timedelta) -> bool:
        """Take (or extend) the collector's lease; False while another holder's lease runs."""

    async def release(self, holder: str) -> None: ...

    async def mark(self, now: datetime) -> int:
        """Record ``now`` on unreferenced rows not yet marked, clear the mark of rows linked again; how many marked."""

    async def count(self, cutoff: datetime) -> tuple[int, int]:
        """How many rows are garbage at ``cutoff`` (marked and last touched before it), and their bytes."""

    async def page(self, cutoff: datetime, after: Oid | None, limit: int) -> list[Garbage]:
        """Up to ``limit`` garbage rows with oids above ``after``, in oid order."""

    async def collect(
        self, claim: str, oids: Collection[Oid], cutoff: datetime, remove: Callable[[list[Oid]], Awaitable[None]]
    ) -> list[Garbage]:
        """In one transaction: claim those of ``oids`` still garbage (one conditional statement, which locks them),
        ``remove`` their bytes, delete their rows. The claimed ones; nothing is deleted if ``remove`` raises."""


class GcStore(Protocol):
    async def delete(self, oids: Collection[Oid]) -> None:
        """Remove these bodies; bodies already gone are not an error."""


class GcObserver(Protocol):
    def gc_finished(self, report: GcReport) -> None: ...


class GcBusy(Conflict):
    default_message = "another garbage collection holds the lease"


@dataclass(frozen=True, slots=True)
class GcReport:
    dry_run: bool
    grace_seconds: int
    objects: int  # deleted, or that a real run would delete
    bytes: int
    marked: int  # rows this run saw unreferenced for the first time (collectable one grace period later)
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "objects": self.objects,
            "bytes": self.bytes,
            "newly_unreferenced": self.marked,
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int], None]  # objects and bytes so far


@dataclass(frozen=True, slots=True)
class GcOptions:
    grace: timedelta
    dry_run: bool = False
    lease: timedelta = timedelta(seconds=300)
    page: int = PAGE


class Collector:
    def __init__(
        self,
        index: GcIndex,
        store: GcStore,
        clock: Callable[[], datetime],
        holder: str,
        observer: GcObserver | None = None,
    ) -> None:
        self._index = index
        self._store = store
        self._clock = clock
        self._holder = holder
        self._observer = observer

    async def run(
        self, options: GcOptions, on_total: Callable[[int, int], None] | None = None, progress: Progress | None = None
    ) -> GcReport:
        started = time.monotonic()
        # A dry run changes nothing and needs no lease: it may run beside a real one.
        if not options.dry_run and not await self._index.acquire(self._holder, self._clock(), options.lease):
            raise GcBusy()
        renewed = time.monotonic()
        try:
            now = self._clock()
            marked = 0 if options.dry_run else await self._index.mark(now)
            # Strictly before: a row marked by this very run is never collected by it, whatever the grace.
            cutoff = now - options.grace
            if on_total is not None:
                on_total(*await self._index.count(cutoff))
            objects = size = 0
            after: Oid | None = None
            while page := await self._index.page(cutoff, after, options.page):
                after = page[-1].oid
                if options.dry_run:
                    done = page
                else:
                    # Renewed when a third of it has gone: a commit (a log sync) per page would double the cost.
                    if time.monotonic() - renewed > options.lease.total_seconds() / 3:
                        if not await self._index.acquire(self._holder, self._clock(), options.lease):
                            raise GcBusy("the garbage collection lease was lost (a page slower than gc_lease?)")
                        renewed = time.monotonic()
                    done = await self._index.collect(self._holder, [g.oid for g in page], cutoff, self._remove)
                objects += len(done)
                size += sum(g.size for g in done)
                if progress is not None:
                    progress(objects, size)
        finally:
            if not options.dry_run:
                await self._index.release(self._holder)
        seconds = time.monotonic() - started
        report = GcReport(options.dry_run, int(options.grace.total_seconds()), objects, size, marked, seconds)
        if self._observer is not None and not options.dry_run:
            self._observer.gc_finished(report)
        return report

    async def _remove(self, oids: list[Oid]) -> None:
        await self._store.delete(oids)
