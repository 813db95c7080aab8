"""Usage counters (issue 14): what keeping them in every link's transaction costs.

Links N objects into one repository through ``SqlObjectIndex.link`` — one at a time (each its own transaction), and
``--concurrency`` at once (group commit) — with the counters, and with the index's two link statements alone as a
reference. Prints links per second for each. Nothing here asserts.

    .venv/bin/python bench/usage.py [--objects 2000] [--concurrency 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lfsd.config import Settings  # noqa: E402
from lfsd.core.oid import Oid  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.db.database import utcnow  # noqa: E402
from lfsd.db.dialect import insert_ignore  # noqa: E402
from lfsd.db.objects import SqlObjectIndex, _Link  # noqa: E402
from lfsd.db.tables import objects, repo_objects  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402


class _WithoutCounters(SqlObjectIndex):
    """The reference: the link's two statements alone, as before the counters (and the collector's checks)."""

    async def _link_rows(self, group: list[_Link]) -> set[str]:
        now = utcnow()
        sizes = {oid: size for one in group for oid, size in one.sizes.items()}
        object_rows = [{"oid": str(oid), "size": size, "created_at": now} for oid, size in sorted(sizes.items())]
        holders = sorted({(one.repo_id, str(oid)) for one in group for oid in one.sizes})
        link_rows = [
            {"repo_id": repo_id, "oid": oid, "created_at": now, "size": sizes[Oid(oid)]} for repo_id, oid in holders
        ]
        async with self._db.transaction() as conn:
            await conn.execute(insert_ignore(objects, self._db.dialect), object_rows)
            await conn.execute(insert_ignore(repo_objects, self._db.dialect), link_rows)
        return set()


def _oid(label: str, n: int) -> Oid:
    return Oid(hashlib.sha256(f"{label}-{n}".encode()).hexdigest())


async def _case(index: SqlObjectIndex, repo_id: int, label: str, count: int, concurrency: int) -> float:
    started = time.perf_counter()
    if concurrency == 1:
        for n in range(count):
            await index.link(repo_id, {_oid(label, n): 1000 + n})
    else:
        for start in range(0, count, concurrency):
            await asyncio.gather(
                *(
                    index.link(repo_id, {_oid(label, n): 1000 + n})
                    for n in range(start, min(count, start + concurrency))
                )
            )
    return count / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), database_url=args.database_url, fsync=False)
        meta = await open_metadata(settings, migrate=True)
        try:
            repo = await meta.repos.create(RepoPath.parse("bench/usage"), is_public=False)
            plain = _WithoutCounters(meta.db)
            print(f"{meta.db.dialect}, {args.objects} links per case")
            for concurrency in (1, args.concurrency):
                for name, index in (("without counters", plain), ("with counters", meta.objects)):
                    rate = await _case(index, repo.id, f"{name}-{concurrency}", args.objects, concurrency)
                    print(f"  {name:17} concurrency {concurrency:3}: {rate:8.0f} links/s")
            usage = await meta.usage.repo_usage(RepoPath.parse("bench/usage"))
            assert usage is not None
            print(f"  counters afterwards: {usage.objects} objects (the counted cases' links only)")
        finally:
            await meta.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    asyncio.run(main(parser.parse_args()))
