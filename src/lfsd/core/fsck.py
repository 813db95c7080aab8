"""fsck: the index checked against the store in both directions, and optionally every byte re-hashed.

A full run walks the index (paged, in oid order) and the store's listing (in oid order) side by side, a merge join:
memory stays bounded and S3 needs one LIST per thousand keys instead of one HEAD per object. ``--repo`` pages only
that repository's objects and stats them. Whatever looks missing or of the wrong size is looked at a second time
before it is reported, so an upload finishing during the run is not taken for damage.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from lfsd.core.inventory import IndexedObject, IndexInventory, StoredBody, StoreInventory
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath

PAGE = 1000
# Bodies up to SMALL_OBJECT bytes are re-hashed in batches (``StoreInventory.digests``): one hop to a thread for
# many 4 KiB files instead of three per file (open, read, close), which capped a local re-hash at ~1,900 objects/s.
# A batch holds at most BATCH_BYTES of bodies' sizes (the backend reads one at a time, or a few for S3); bigger
# bodies stream through ``read`` in the store's bounded chunks.
SMALL_OBJECT = 256 * 1024
BATCH_OBJECTS = 256
BATCH_BYTES = 4 * 1024 * 1024
LISTED_UNINDEXED = 1000  # bodies without rows are counted in full but named only up to this many


class Problem(StrEnum):
    MISSING = "missing"  # rows without bytes
    SIZE = "size"  # the stored size differs from the indexed one
    CORRUPT = "corrupt"  # the bytes do not hash to the oid
    UNINDEXED = "unindexed"  # bytes no repository holds: the collector's job (--collect-unindexed records rowless ones)


class UnsafeCollection(ValueError):
    """Collecting unindexed bodies was refused: the index looks like the wrong database."""


class Repair(StrEnum):
    QUARANTINED = "quarantined"  # unlinked everywhere, bytes moved aside
    UNLINKED = "unlinked"  # unlinked everywhere (there were no bytes to move)


class ExitStatus(IntEnum):
    """``lfsd fsck``'s exit status (1 and 2 are the CLI's: could not run, bad usage)."""

    CLEAN = 0
    DAMAGED = 3  # missing, wrong-size or corrupt objects left as they are
    REPAIRED = 4  # damage found, and every damaged object quarantined or unlinked: the next push re-uploads it
    UNINDEXED = 5  # nothing damaged, but bytes no repository holds


@dataclass(frozen=True, slots=True)
class Finding:
    oid: Oid
    problem: Problem
    repos: tuple[RepoPath, ...]
    indexed_size: int | None
    stored_size: int | None
    repair: Repair | None = None
    quarantined_to: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "oid": str(self.oid),
            "problem": str(self.problem),
            "repos": [str(repo) for repo in self.repos],
            "indexed_size": self.indexed_size,
            "stored_size": self.stored_size,
            "repair": None if self.repair is None else str(self.repair),
            "quarantined_to": self.quarantined_to,
        }


@dataclass(frozen=True, slots=True)
class FsckOptions:
    rehash: bool = False
    repair: bool = False
    repo: RepoPath | None = None
    sample: float = 1.0  # the fraction of objects re-hashed (with ``rehash``)
    max_rate: float | None = None  # bytes per second read for re-hashing; None: as fast as the store goes
    seed: int | None = None  # of the sample; None: a different sample each run
    collect_unindexed: bool = False  # record bodies the index has no row for, so that garbage collection takes them

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample <= 1.0:
            raise ValueError("the sample is a fraction between 0 and 1")
        if self.collect_unindexed and self.repo is not None:
            raise ValueError("collecting unindexed bodies needs a full run, not one repository")
        if self.max_rate is not None and self.max_rate <= 0:
            raise ValueError("the maximum rate must be positive")


@dataclass
class FsckReport:
    options: FsckOptions
    objects: int = 0  # indexed objects checked
    bytes: int = 0  # their indexed sizes, added up
    stored: int | None = None  # bodies listed (full runs only)
    rehashed_objects: int = 0
    rehashed_bytes: int = 0
    seconds: float = 0.0
    damaged: list[Finding] = field(default_factory=list)
    unindexed: list[Finding] = field(default_factory=list)
    unindexed_count: int = 0
    unindexed_bytes: int = 0
    unindexed_recorded: int | None = None  # rows made for garbage collection (``collect_unindexed`` only)

    @property
    def exit_status(self) -> ExitStatus:
        if self.damaged:
            repaired = all(finding.repair is not None for finding in self.damaged)
            return ExitStatus.REPAIRED if repaired else ExitStatus.DAMAGED
        return ExitStatus.UNINDEXED if self.unindexed_count else ExitStatus.CLEAN

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_status is ExitStatus.CLEAN,
            "exit_status": int(self.exit_status),
            "scope": {
                "repo": None if self.options.repo is None else str(self.options.repo),
                "rehash": self.options.rehash,
                "sample_percent": self.options.sample * 100 if self.options.rehash else None,
                "repair": self.options.repair,
                "collect_unindexed": self.options.collect_unindexed,
            },
            "objects": self.objects,
            "bytes": self.bytes,
            "stored_bodies": self.stored,
            "rehashed": {"objects": self.rehashed_objects, "bytes": self.rehashed_bytes},
            "seconds": round(self.seconds, 3),
            "damaged": [finding.as_json() for finding in self.damaged],
            "unindexed": {
                "count": self.unindexed_count,
                "bytes": self.unindexed_bytes,
                "checked": self.stored is not None,
                "recorded_for_gc": self.unindexed_recorded,
                "objects": [finding.as_json() for finding in self.unindexed],
            },
        }


Progress = Callable[[int, int], None]  # called after each indexed object: objects done, bytes re-hashed so far


class Pacer:
    """Holds reads to ``rate`` bytes per second on average, so a re-hash spares the disk for the users."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._start = clock()
        self._spent = 0

    async def spend(self, n: int) -> None:
        if self._rate is None:
            return
        self._spent += n
        delay = self._start + self._spent / self._rate - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)


class Fsck:
    """The use case, over the two inventory ports; the CLI runs it, the admin API can later."""

    def __init__(self, index: IndexInventory, store: StoreInventory, clock: Callable[[], float] = time.monotonic):
        self._index = index
        self._store = store
        self._clock = clock

    async def count(self, repo: RepoPath | None = None) -> int:
        return await self._index.count(repo)

    async def run(self, options: FsckOptions, progress: Progress | None = None) -> FsckReport:
        started = self._clock()
        report = FsckReport(options)
        pacer = Pacer(options.max_rate, self._clock)
        sampler = random.Random(options.seed)  # noqa: S311 - a sample, not a secret
        if options.repo is None:
            report.stored = 0
            pairs = self._merged(report)
        else:
            pairs = self._stat_each(options.repo)
        batch: list[IndexedObject] = []
        adopted: dict[Oid, int] = {}
        if options.collect_unindexed:
            if await self._index.count() == 0:
                raise UnsafeCollection(
                    "the index holds no objects: is this the right database? "
                    "Refusing to hand every stored body to garbage collection"
                )
            report.unindexed_recorded = 0
        async for row, body in pairs:
            if row is None:
                assert body is not None
                self._unindexed(report, body)
                if options.collect_unindexed:
                    await self._collect(body, report, pacer, adopted)
                continue
            report.objects += 1
            report.bytes += row.size
            finding = await self._sized(row, body)
            if finding is None and options.rehash and sampler.random() < options.sample:
                if row.size <= SMALL_OBJECT:
                    batch.append(row)
                    if len(batch) >= BATCH_OBJECTS or sum(r.size for r in batch) >= BATCH_BYTES:
                        await self._rehash_batch(batch, options, report, pacer)
                elif await self._hashes_right(row, pacer):
                    report.rehashed_objects += 1
                    report.rehashed_bytes += row.size
                else:
                    finding = Finding(row.oid, Problem.CORRUPT, row.repos, row.size, row.size)
            if finding is not None:
                await self._found(finding, options, report)
            if progress is not None:
                progress(report.objects, report.rehashed_bytes)
        await self._rehash_batch(batch, options, report, pacer)
        await self._adopt(adopted, report)
        report.seconds = self._clock() - started
        return report

    async def _collect(self, body: StoredBody, report: FsckReport, pacer: Pacer, adopted: dict[Oid, int]) -> None:
        """Only a body that hashes to its oid is recorded: its listed size is then the object's, and a row keeps its
        size for good (a truncated body would leave a wrong one). Others are reported as corrupt and left alone: an
        upload of the oid replaces them."""
        if await self._hashes_right(IndexedObject(body.oid, body.size, ()), pacer):
            report.rehashed_objects += 1
            report.rehashed_bytes += body.size
            adopted[body.oid] = body.size
            if len(adopted) >= PAGE:
                await self._adopt(adopted, report)
        else:
            report.damaged.append(Finding(body.oid, Problem.CORRUPT, (), None, body.size))

    async def _adopt(self, adopted: dict[Oid, int], report: FsckReport) -> None:
        """Unindexed bodies become rows held by no repository, which garbage collection removes. Safe beside a
        push: a link of the same oid finds the row marked and checks the store for the bytes first."""
        if adopted:
            assert report.unindexed_recorded is not None
            report.unindexed_recorded += await self._index.adopt(adopted)
            adopted.clear()

    async def _found(self, finding: Finding, options: FsckOptions, report: FsckReport) -> None:
        report.damaged.append(await self._repair(finding) if options.repair else finding)

    async def _sized(self, row: IndexedObject, body: StoredBody | None) -> Finding | None:
        stored = None if body is None else body.size
        if stored != row.size:
            # A second look: an upload may have finished (or replaced the bytes) since the listing passed this oid.
            stored = (await self._store.sizes([row.oid])).get(row.oid)
        if stored is None:
            return Finding(row.oid, Problem.MISSING, row.repos, row.size, None)
        if stored != row.size:
            return Finding(row.oid, Problem.SIZE, row.repos, row.size, stored)
        return None

    async def _rehash_batch(
        self, batch: list[IndexedObject], options: FsckOptions, report: FsckReport, pacer: Pacer
    ) -> None:
        """Re-hash the small objects of ``batch`` in one call to the store, then empty it."""
        if not batch:
            return
        digests = await self._store.digests([(row.oid, row.size) for row in batch])
        for row in batch:
            if digests.get(row.oid) == row.oid:
                report.rehashed_objects += 1
                report.rehashed_bytes += row.size
            else:
                await self._found(Finding(row.oid, Problem.CORRUPT, row.repos, row.size, row.size), options, report)
        await pacer.spend(sum(row.size for row in batch))
        batch.clear()

    async def _hashes_right(self, row: IndexedObject, pacer: Pacer) -> bool:
        """Re-read the body in the store's bounded chunks (whatever its size) and hash it as it streams by.

        Hashed on the event loop: a chunk is at most a few hundred KiB, a fraction of a millisecond of SHA-256.
        """
        digest = hashlib.sha256()
        length = 0
        async for chunk in self._store.read(row.oid, 0, row.size):
            digest.update(chunk)
            length += len(chunk)
            await pacer.spend(len(chunk))
        return length == row.size and digest.hexdigest() == row.oid

    async def _repair(self, finding: Finding) -> Finding:
        """Unlink first, in one transaction for every repository: from then on nobody is served the damaged object
        and every push that has the file uploads it again. Then the bad bytes are moved aside."""
        await self._index.unlink([finding.oid])
        if finding.problem is Problem.MISSING:
            return _replace(finding, Repair.UNLINKED, None)
        where = await self._store.quarantine(finding.oid)
        return _replace(finding, Repair.QUARANTINED if where else Repair.UNLINKED, where)

    def _unindexed(self, report: FsckReport, body: StoredBody) -> None:
        report.unindexed_count += 1
        report.unindexed_bytes += body.size
        if len(report.unindexed) < LISTED_UNINDEXED:
            report.unindexed.append(Finding(body.oid, Problem.UNINDEXED, (), None, body.size))

    async def _rows(self, repo: RepoPath | None) -> AsyncIterator[IndexedObject]:
        after: Oid | None = None
        while page := await self._index.page(after, PAGE, repo):
            for row in page:
                yield row
            after = page[-1].oid

    async def _merged(self, report: FsckReport) -> AsyncIterator[tuple[IndexedObject | None, StoredBody | None]]:
        """Index rows and stored bodies side by side, both in oid order: a pair, a row alone or a body alone."""
        rows = self._rows(None)
        bodies = aiter(self._store.listing())
        row = await anext(rows, None)
        body = await anext(bodies, None)
        while row is not None or body is not None:
            if body is None or (row is not None and row.oid < body.oid):
                yield row, None
                row = await anext(rows, None)
                continue
            assert report.stored is not None
            report.stored += 1
            if row is None or body.oid < row.oid:
                yield None, body
            else:
                yield row, body
                row = await anext(rows, None)
            body = await anext(bodies, None)

    async def _stat_each(self, repo: RepoPath) -> AsyncIterator[tuple[IndexedObject, StoredBody | None]]:
        after: Oid | None = None
        while page := await self._index.page(after, PAGE, repo):
            sizes = await self._store.sizes([row.oid for row in page])
            for row in page:
                size = sizes.get(row.oid)
                yield row, None if size is None else StoredBody(row.oid, size)
            after = page[-1].oid


def _replace(finding: Finding, repair: Repair, where: str | None) -> Finding:
    return Finding(
        finding.oid, finding.problem, finding.repos, finding.indexed_size, finding.stored_size, repair, where
    )
