"""How ``lfsd fsck`` shows itself on a terminal: a progress bar with rate and ETA, and a report in lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Never

from lfsd.core.fsck import ExitStatus, Finding, FsckReport, Problem

if TYPE_CHECKING:
    from tqdm import tqdm


class FsckProgress:
    """tqdm on stderr over the indexed objects; the re-hash rate in MB/s beside it."""

    def __init__(self, total: int) -> None:
        # Imported here: `lfsd serve` loads this module with the CLI, and only fsck needs tqdm (issue 17).
        from tqdm import tqdm

        self._bar: tqdm[Never] = tqdm(total=total, unit="obj", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        self._started = time.monotonic()
        self._objects = 0

    def update(self, objects: int, hashed_bytes: int) -> None:
        self._bar.update(objects - self._objects)
        self._objects = objects
        if hashed_bytes:
            rate = hashed_bytes / max(time.monotonic() - self._started, 1e-6) / 1e6
            self._bar.set_postfix_str(f"{rate:.1f} MB/s hashed", refresh=False)

    def __enter__(self) -> FsckProgress:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._bar.close()


def describe_report(report: FsckReport) -> Iterator[str]:
    scope = f"repository {report.options.repo}" if report.options.repo else "all repositories"
    against = f" against {report.stored} stored bodies" if report.stored is not None else ""
    yield f"checked {report.objects} objects ({_mb(report.bytes)}) of {scope}{against} in {report.seconds:.1f} s"
    if report.options.rehash:
        yield f"re-hashed {report.rehashed_objects} objects ({_mb(report.rehashed_bytes)})"
    for finding in report.damaged:
        yield _line(finding)
    for finding in report.unindexed:
        yield _line(finding)
    if report.unindexed_count > len(report.unindexed):
        yield f"… and {report.unindexed_count - len(report.unindexed)} more bodies no repository holds"
    yield _verdict(report)


def _line(finding: Finding) -> str:
    if finding.problem is Problem.UNINDEXED:
        return f"unindexed {finding.oid} {finding.stored_size} bytes, held by no repository (left for GC)"
    what = {
        Problem.MISSING: "no bytes in the store",
        Problem.SIZE: f"stored size {finding.stored_size}, indexed {finding.indexed_size}",
        Problem.CORRUPT: "bytes do not hash to the oid",
    }[finding.problem]
    held = ", ".join(finding.repos) or "no repository"
    done = f" → {finding.repair}" if finding.repair else ""
    where = f" ({finding.quarantined_to})" if finding.quarantined_to else ""
    return f"{finding.problem:<9} {finding.oid} {what}; held by {held}{done}{where}"


def _verdict(report: FsckReport) -> str:
    status = report.exit_status
    if status is ExitStatus.CLEAN:
        return "all is well"
    if status is ExitStatus.UNINDEXED:
        held = f"no damage; {report.unindexed_count} bodies ({_mb(report.unindexed_bytes)}) held by no repository"
        if report.unindexed_recorded is not None:
            made = report.unindexed_recorded
            return f"{held}; {made} unknown to the index recorded for garbage collection (lfsd gc, one grace period on)"
        return f"{held} (--collect-unindexed records those unknown to the index, so that lfsd gc removes them)"
    if status is ExitStatus.REPAIRED:
        return f"{len(report.damaged)} damaged objects repaired: the next push of each re-uploads it"
    return f"{len(report.damaged)} damaged objects: run with --repair to unlink them so the next push re-uploads them"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
