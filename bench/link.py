"""The link transaction's CPU cost (issue 17): ``SqlObjectIndex.link`` in-process, on one database.

Links N new objects into one repository for each ``--concurrency`` level: at 1 one at a time (each its own
transaction), at C in rounds of C links started together (group commit: one transaction for the round), with the
store's presence check answered at once (every body there). Prints the process's CPU milliseconds (user + system,
every thread: aiosqlite's too) per link, the wall time, and the fsync/fdatasync calls per link (every thread;
counted by ``perf stat`` attached to this process when perf is there and allowed to, else "n/a"). Nothing here
asserts.

    .venv/bin/python bench/link.py [--links 300] [--concurrency 1,8] [--repeat 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lfsd.config import Settings  # noqa: E402
from lfsd.core.oid import Oid  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.db.objects import SqlObjectIndex  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402


def _oid(label: str, n: int) -> Oid:
    return Oid(hashlib.sha256(f"{label}-{n}".encode()).hexdigest())


async def _all_present(oids: Collection[Oid]) -> set[Oid]:
    return set(oids)


SYNC_EVENTS = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync"


@contextmanager
def syncs_counted() -> Iterator[list[int]]:
    """The fsync and fdatasync calls this process makes in the block (one number, after it), through ``perf stat``
    attached to it; an empty list when perf is missing or may not read the syscall tracepoints."""
    counted: list[int] = []
    perf = shutil.which("perf")
    if perf is None:
        yield counted
        return
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as out:
        command = [perf, "stat", "-x,", "-o", out.name, "-e", SYNC_EVENTS, "-p", str(os.getpid())]
        watcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached by then (perf says nothing when it is)
        try:
            yield counted
        finally:
            watcher.send_signal(signal.SIGINT)
            watcher.wait()
            values = [line.split(",")[0] for line in out.read().splitlines() if "sys_enter_" in line]
            if values and all(value.isdigit() for value in values):
                counted.append(sum(int(value) for value in values))


async def _case(
    index: SqlObjectIndex, repo_id: int, label: str, count: int, concurrency: int
) -> tuple[float, float, int | None]:
    """CPU ms and wall ms per link, and the fsync calls (None: not counted)."""
    with syncs_counted() as syncs:
        cpu, wall = time.process_time(), time.perf_counter()
        await _links(index, repo_id, label, count, concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1000 / count, wall * 1000 / count, syncs[0] if syncs else None


async def _links(index: SqlObjectIndex, repo_id: int, label: str, count: int, concurrency: int) -> None:
    if concurrency == 1:
        for n in range(count):
            await index.link(repo_id, {_oid(label, n): 1000 + n}, None)
    else:
        for start in range(0, count, concurrency):
            await asyncio.gather(
                *(
                    index.link(repo_id, {_oid(label, n): 1000 + n})
                    for n in range(start, min(count, start + concurrency))
                )
            )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), database_url=args.database_url, fsync=False)
        meta = await open_metadata(settings, migrate=True)
        try:
            repo = await meta.repos.create(RepoPath.parse(f"bench/link-{time.time_ns()}"), is_public=False)
            meta.objects.check_bodies_with(_all_present)
            await _links(meta.objects, repo.id, "warm-up", 20, 1)
            levels = [int(level) for level in args.concurrency.split(",")]
            print(f"{meta.db.dialect}, {args.links} links per run, {args.repeat} runs (medians), load {_load()}")
            cpu: dict[int, list[float]] = {level: [] for level in levels}
            wall: dict[int, list[float]] = {level: [] for level in levels}
            syncs: dict[int, list[int]] = {level: [] for level in levels}
            for run in range(args.repeat):  # the levels take turns, so that the machine's load weighs on each alike
                for level in levels:
                    label = f"{time.time_ns()}-{level}-{run}"
                    one_cpu, one_wall, one_syncs = await _case(meta.objects, repo.id, label, args.links, level)
                    cpu[level].append(one_cpu)
                    wall[level].append(one_wall)
                    if one_syncs is not None:
                        syncs[level].append(one_syncs)
            for level in levels:
                per_link = f"{statistics.median(syncs[level]) / args.links:5.3f}" if syncs[level] else "  n/a"
                print(
                    f"  concurrency {level:3}: {statistics.median(cpu[level]):6.3f} CPU ms/link"
                    f" ({', '.join(f'{c:.3f}' for c in cpu[level])}), {statistics.median(wall[level]):6.3f} wall"
                    f" ms/link, {per_link} fsyncs/link"
                )
        finally:
            await meta.close()


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=300)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated links started together, e.g. 1,3,8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    asyncio.run(main(parser.parse_args()))
