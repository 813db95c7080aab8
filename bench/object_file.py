"""One object file's own cost (issue 17): create, write, fsync, name, directory fsync, in one thread, per mode.

Modes, interleaved round by round in one process so that they see the same file system state (on ext4 without a
journal, creating an inode costs more the more inodes were deleted in the last minutes, and that moves between runs):

- ``named``: a named temp file in ``tmp/``, renamed into its shard directory (lfsd before ``O_TMPFILE``);
- ``unnamed``: ``O_TMPFILE`` in ``tmp/``, linked into its shard directory (``ObjectFile(unnamed_in=tmp)``);
- ``unnamed-shard``: ``O_TMPFILE`` opened in the shard directory itself (lfsd now: the inode near its directory).

Each mode has a store of its own. Every object's shard directory exists before it is written (a store past a few
hundred thousand objects has all 65,536). No file is deleted until every round is done, except with ``--churn N``:
N objects written the mode's way and deleted right before each round, as after a garbage collection.
Prints CPU µs per object (user and kernel, from ``getrusage(RUSAGE_THREAD)``) per round and the medians. Nothing here
asserts.

    .venv/bin/python bench/object_file.py [--objects 200] [--rounds 8] [--size 102400] [--dir DIR] [--no-direct]
        [--churn N]
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


def one_round(
    root: Path, mode: str, objects: int, view: memoryview, *, direct: bool, churn: int
) -> tuple[float, float]:
    if churn:  # a collector's work: objects written this way, then deleted, just before the timed writes
        for name in write(root, mode, [secrets.token_hex(32) for _ in range(churn)], view, direct=direct):
            os.unlink(name)  # noqa: PTH108
    names = [secrets.token_hex(32) for _ in range(objects)]
    before = resource.getrusage(resource.RUSAGE_THREAD)
    write(root, mode, names, view, direct=direct)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    return (after.ru_utime - before.ru_utime) / objects, (after.ru_stime - before.ru_stime) / objects


def write(root: Path, mode: str, names: list[str], view: memoryview, *, direct: bool) -> list[str]:
    """The objects ``names``, each with its shard directory made beforehand; their paths."""
    for name in names:
        (root / mode / "objects" / name[:2] / name[2:4]).mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        shard = f"{root}/{mode}/objects/{name[:2]}/{name[2:4]}"
        unnamed_in = {"named": None, "unnamed": f"{root}/{mode}/tmp", "unnamed-shard": shard}[mode]
        file = ObjectFile(f"{root}/{mode}/tmp/{name}.tmp", len(view), direct=direct, unnamed_in=unnamed_in)
        file.write_whole(view)
        file.commit(f"{shard}/{name}", fsync=True)
        paths.append(f"{shard}/{name}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--dir", type=Path, default=None, help="where the store is made (default: the temp dir)")
    parser.add_argument("--no-direct", action="store_true")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--churn", type=int, default=0, help="objects written and deleted (in each mode's store) before each round"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    root = Path(tempfile.mkdtemp(prefix="lfsd-objectfile-", dir=args.dir))
    buffer = mmap.mmap(-1, max(args.size, mmap.PAGESIZE))
    buffer.write(os.urandom(args.size))
    view = memoryview(buffer)[: args.size]
    figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    try:
        for mode in modes:
            (root / mode / "tmp").mkdir(parents=True)
        for number in range(args.rounds):
            order = modes if number % 2 == 0 else modes[::-1]  # ABBA: neither mode always goes first
            for mode in order:
                user, kernel = one_round(root, mode, args.objects, view, direct=not args.no_direct, churn=args.churn)
                figures[mode].append((user, kernel))
                print(f"round {number} {mode:<14} user {user * 1e6:6.1f} µs  kernel {kernel * 1e6:6.1f} µs")
        print(f"medians of {args.rounds} rounds of {args.objects} x {args.size} bytes (CPU µs per object):")
        for mode in modes:
            user = statistics.median(u for u, _ in figures[mode]) * 1e6
            kernel = statistics.median(k for _, k in figures[mode]) * 1e6
            print(f"  {mode:<14} user {user:6.1f}  kernel {kernel:6.1f}  total {user + kernel:6.1f}")
        leftovers = [path for mode in modes for path in (root / mode / "tmp").iterdir()]
        if leftovers:
            print(f"left in tmp/: {len(leftovers)}")
    finally:
        view.release()
        buffer.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
