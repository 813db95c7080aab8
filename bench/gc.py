"""Garbage collection throughput: objects/s for ``lfsd gc --dry-run`` and for a real run. Prints; asserts nothing.

The objects are written straight to disk and linked to a repository in batches, the repository is deleted and the
rows are marked unreferenced two days ago, so the run deletes them all. MB is 10^6 bytes. SQLite by default (it
syncs every commit: one per page of 200 objects); ``--database-url`` for MariaDB or PostgreSQL.

    .venv/bin/python bench/gc.py [--objects 100000] [--size 4096] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


from lfsd.config import Settings  # noqa: E402
from lfsd.core.gc import Collector, GcOptions  # noqa: E402
from lfsd.core.oid import Oid  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.db.database import utcnow  # noqa: E402
from lfsd.db.gc import SqlGcIndex  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402
from lfsd.storage.buffers import BufferPool  # noqa: E402
from lfsd.storage.local import LocalStore  # noqa: E402

LINK_BATCH = 5000


def write_objects(root: Path, count: int, size: int) -> dict[Oid, int]:
    """``count`` distinct objects of ``size`` bytes (a counter in front of fixed random bytes), as bench/fsck.py."""
    filler = os.urandom(max(size - 8, 0))
    made: dict[Oid, int] = {}
    for i in range(count):
        data = (i.to_bytes(8, "big") + filler)[:size]
        oid = Oid.parse(hashlib.sha256(data).hexdigest())
        first, second = oid.shard
        folder = root / "objects" / first / second
        folder.mkdir(parents=True, exist_ok=True)
        (folder / oid).write_bytes(data)
        made[oid] = len(data)
    return made


class _TimedDeletes:
    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self.seconds = 0.0

    async def delete(self, oids: Collection[Oid]) -> None:
        started = time.monotonic()
        await self._store.delete(oids)
        self.seconds += time.monotonic() - started


async def main(count: int, size: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-gc-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.monotonic()
        made = write_objects(data_dir, count, size)
        settings = Settings(data_dir=data_dir, fsync=False, database_url=database_url)
        meta = await open_metadata(settings, migrate=True)
        try:
            repo = await meta.repos.create(RepoPath.parse("bench/gc"), is_public=False)
            items = sorted(made.items())
            for start in range(0, len(items), LINK_BATCH):
                await meta.objects.link(repo.id, dict(items[start : start + LINK_BATCH]))
            await meta.repos.delete(repo)
            index = SqlGcIndex(meta.db)
            marked = time.monotonic()
            await index.mark(utcnow() - timedelta(days=2))
            mark_s = time.monotonic() - marked
            # Freshly written files are dirty in the page cache, and unlinking them then costs far more than in a
            # store at rest (measured: 1.4 ms each for 100,000 just written): write them back first.
            os.sync()
            setup = time.monotonic() - started
            store = LocalStore(settings.local_storage_root, BufferPool(64 * 1024, 1 << 20), fsync=False)
            timed = _TimedDeletes(store)
            collector = Collector(index, timed, utcnow, "gc-bench")
            figures: dict[str, object] = {
                "objects": count,
                "object_bytes": size,
                "database": meta.db.dialect,
                "setup_s": round(setup, 1),
                "mark_s": round(mark_s, 2),
            }
            for name, dry_run in (("dry_run", True), ("gc", False)):
                report = await collector.run(GcOptions(grace=timedelta(days=1), dry_run=dry_run))
                assert report.objects == count, report.as_json()
                figures[f"{name}_s"] = round(report.seconds, 2)
                figures[f"{name}_objects_per_s"] = round(report.objects / report.seconds)
                figures[f"{name}_mb_per_s"] = round(report.bytes / report.seconds / 1e6, 1)
            figures["store_delete_s"] = round(timed.seconds, 2)  # of gc_s: the unlinks, inside the claims
            print(json.dumps(figures))
        finally:
            await meta.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.size, args.database_url))
