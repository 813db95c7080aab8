"""The link transaction's CPU cost (issue 17): ``SqlObjectIndex.link`` in-process, on one database.

Links N new objects into one repository, one at a time (each its own transaction), then N more in groups of
``--concurrency`` started together (group commit), with the store's presence check answered at once (every body
there), and prints the process's CPU milliseconds (user + system, every thread: aiosqlite's too) per link and the
wall time. Nothing here asserts.

    .venv/bin/python bench/link.py [--links 300] [--concurrency 8] [--repeat 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Collection
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


async def _case(index: SqlObjectIndex, repo_id: int, label: str, count: int, concurrency: int) -> tuple[float, float]:
    """CPU ms and wall ms per link."""
    cpu, wall = time.process_time(), time.perf_counter()
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
    return (time.process_time() - cpu) * 1000 / count, (time.perf_counter() - wall) * 1000 / count


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), database_url=args.database_url, fsync=False)
        meta = await open_metadata(settings, migrate=True)
        try:
            repo = await meta.repos.create(RepoPath.parse(f"bench/link-{time.time_ns()}"), is_public=False)
            meta.objects.check_bodies_with(_all_present)
            await _case(meta.objects, repo.id, "warm-up", 20, 1)
            print(f"{meta.db.dialect}, {args.links} links per run, {args.repeat} runs (medians)")
            for concurrency in (1, args.concurrency):
                cpu: list[float] = []
                wall: list[float] = []
                for run in range(args.repeat):
                    label = f"{time.time_ns()}-{concurrency}-{run}"
                    one_cpu, one_wall = await _case(meta.objects, repo.id, label, args.links, concurrency)
                    cpu.append(one_cpu)
                    wall.append(one_wall)
                print(
                    f"  concurrency {concurrency:3}: {statistics.median(cpu):6.3f} CPU ms/link"
                    f" ({', '.join(f'{c:.3f}' for c in cpu)}), {statistics.median(wall):6.3f} wall ms/link"
                )
        finally:
            await meta.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    asyncio.run(main(parser.parse_args()))
