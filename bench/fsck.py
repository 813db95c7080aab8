"""fsck throughput: objects/s for the index-against-store check, MB/s for ``--rehash``. Prints; asserts nothing.

The objects are written straight to disk (``objects/ab/cd/<oid>``) and their rows straight into SQLite, so that
setting up 100,000 objects takes seconds rather than 100,000 uploads. MB is 10^6 bytes.

    .venv/bin/python bench/fsck.py [--objects 100000] [--size 4096]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lfsd.config import Settings  # noqa: E402
from lfsd.core.fsck import Fsck, FsckOptions  # noqa: E402
from lfsd.core.oid import Oid  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.db.inventory import SqlIndexInventory  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402
from lfsd.storage.buffers import BufferPool  # noqa: E402
from lfsd.storage.local import LocalStore  # noqa: E402

LINK_BATCH = 5000


def write_objects(root: Path, count: int, size: int) -> dict[Oid, int]:
    """``count`` distinct objects of ``size`` bytes (a counter in front of fixed random bytes)."""
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


async def main(count: int, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-fsck-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.monotonic()
        made = write_objects(data_dir, count, size)
        settings = Settings(data_dir=data_dir, fsync=False)
        meta = await open_metadata(settings)
        try:
            repo = await meta.repos.create(RepoPath.parse("bench/fsck"), is_public=False)
            items = sorted(made.items())
            for start in range(0, len(items), LINK_BATCH):
                await meta.objects.link(repo.id, dict(items[start : start + LINK_BATCH]))
            setup = time.monotonic() - started
            store = LocalStore(settings.local_storage_root, BufferPool(64 * 1024, 1 << 20), fsync=False)
            checker = Fsck(SqlIndexInventory(meta.db), store)
            figures: dict[str, object] = {"objects": count, "object_bytes": size, "setup_s": round(setup, 1)}
            for name, options in (("check", FsckOptions()), ("rehash", FsckOptions(rehash=True))):
                report = await checker.run(options)
                assert report.damaged == [] and report.unindexed_count == 0, report.as_json()
                figures[f"{name}_s"] = round(report.seconds, 2)
                figures[f"{name}_objects_per_s"] = round(report.objects / report.seconds)
                if options.rehash:
                    figures["rehash_mb_per_s"] = round(report.rehashed_bytes / report.seconds / 1e6, 1)
            print(json.dumps(figures))
        finally:
            await meta.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per object")
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.size))
