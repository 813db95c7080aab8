"""One object file's own cost (issue 17): create, write, fsync, name, directory fsync, in one thread, per mode.

Modes, interleaved round by round in one process so that they see the same file system state (on ext4 without a
journal, creating an inode costs more the more inodes were deleted in the last minutes, and that moves between runs):

- ``named``: a named temp file in ``tmp/``, renamed into its shard directory (lfsd before ``O_TMPFILE``);
- ``unnamed``: ``O_TMPFILE`` in ``tmp/``, linked into its shard directory (``ObjectFile(unnamed_in=tmp)``);
- ``unnamed-shard``: ``O_TMPFILE`` opened in the shard directory itself (lfsd now: the inode near its directory).

Every object's shard directory exists before it is written (a store past a few hundred thousand objects has all
65,536), and no file is deleted until every round is done. Prints CPU µs per object (user and kernel, from
``getrusage(RUSAGE_THREAD)``) per round and the medians. Nothing here asserts.

    .venv/bin/python bench/object_file.py [--objects 200] [--rounds 8] [--size 102400] [--dir DIR] [--no-direct]
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lfsd.storage.objectfile import ObjectFile  # noqa: E402

MODES = ("named", "unnamed", "unnamed-shard")


def one_round(root: Path, mode: str, objects: int, view: memoryview, *, direct: bool) -> tuple[float, float]:
    names = [secrets.token_hex(32) for _ in range(objects)]
    for name in names:
        (root / "objects" / name[:2] / name[2:4]).mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_THREAD)
    for name in names:
        shard = f"{root}/objects/{name[:2]}/{name[2:4]}"
        unnamed_in = {"named": None, "unnamed": f"{root}/tmp", "unnamed-shard": shard}[mode]
        file = ObjectFile(f"{root}/tmp/{name}.tmp", len(view), direct=direct, unnamed_in=unnamed_in)
        file.write_whole(view)
        file.commit(f"{shard}/{name}", fsync=True)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    return (after.ru_utime - before.ru_utime) / objects, (after.ru_stime - before.ru_stime) / objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--dir", type=Path, default=None, help="where the store is made (default: the temp dir)")
    parser.add_argument("--no-direct", action="store_true")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")
    root = Path(tempfile.mkdtemp(prefix="lfsd-objectfile-", dir=args.dir))
    buffer = mmap.mmap(-1, max(args.size, mmap.PAGESIZE))
    buffer.write(os.urandom(args.size))
    view = memoryview(buffer)[: args.size]
    figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    try:
        (root / "tmp").mkdir()
        for number in range(args.rounds):
            order = modes if number % 2 == 0 else modes[::-1]  # ABBA: neither mode always goes first
            for mode in order:
                user, kernel = one_round(root, mode, args.objects, view, direct=not args.no_direct)
                figures[mode].append((user, kernel))
                print(f"round {number} {mode:<14} user {user * 1e6:6.1f} µs  kernel {kernel * 1e6:6.1f} µs")
        print(f"medians of {args.rounds} rounds of {args.objects} x {args.size} bytes (CPU µs per object):")
        for mode in modes:
            user = statistics.median(u for u, _ in figures[mode]) * 1e6
            kernel = statistics.median(k for _, k in figures[mode]) * 1e6
            print(f"  {mode:<14} user {user:6.1f}  kernel {kernel:6.1f}  total {user + kernel:6.1f}")
        leftovers = list((root / "tmp").iterdir())
        if leftovers:
            print(f"left in tmp/: {len(leftovers)}")
    finally:
        view.release()
        buffer.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
