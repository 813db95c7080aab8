"""Where an upload's CPU goes, thread by thread (issue 17): lfsd against the durable floor (bench/floor.py --durable).

Sends ``--objects`` 100 KiB PUTs over ``--streams`` keep-alive connections (git-lfs uses 8) to lfsd, and to the
durable floor with ``--floor``, servers alternated ``--repeat`` times, and prints the server's CPU milliseconds per
object (user + kernel, from ``/proc/PID/task/*/stat``) for each kind of thread: the event loop, the database's
thread (aiosqlite's, or the floor's SQLite thread), the file threads (``lfsd-io``, or the floor's) and any other.
Thread names are Python's, read once with ``py-spy dump`` after a warm-up (the executors start their threads on
demand). ``--premade`` creates the objects' shard directories first, as in a store that has grown: on a new store
nearly every upload makes a shard directory and syncs its parent. Nothing here asserts.

``--compare TREE`` (a tree exported with ``git archive``) or ``--variant NAME=VALUE`` (settings for a second lfsd)
adds a second lfsd, alternated with the first, for A/B measurements of one change.

    .venv/bin/python bench/put_threads.py [--objects 3000] [--streams 8] [--repeat 2] [--floor] [--premade]
        [--compare TREE | --variant LFSD_NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_split import Snapshot, snapshot
from lfsd.config import Settings
from small import (
    OBJECT_SIZE,
    Options,
    RawClient,
    Target,
    floor_target,
    lfsd_target,
    old_tree_env,
)
from small_report import DURABLE, LFSD, OLD

VARIANT = "lfsd variant"

WARM_UP = 100  # PUTs before the thread names are read and the measurement starts
KINDS = ("event loop", "database", "files", "other")
_THREAD_LINE = re.compile(r'^Thread (\d+) \(\w+\): "([^"]*)"')


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from ``py-spy dump``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=True).stdout
    return {int(m.group(1)): m.group(2) for line in dump.splitlines() if (m := _THREAD_LINE.match(line))}


def kind_of(name: str) -> str:
    if name == "MainThread":
        return "event loop"
    if "_connection_worker_thread" in name or name.startswith("floor-sqlite"):
        return "database"
    if name.startswith(("lfsd-io", "floor-files")):
        return "files"
    return "other"


def cpu_by_kind(before: Snapshot, after: Snapshot, names: dict[int, str]) -> dict[str, float]:
    """CPU seconds between two snapshots, summed per kind of thread (threads started after the dump count as other)."""
    seconds = dict.fromkeys(KINDS, 0.0)
    for (pid, tid), (user, kernel) in after.items():
        user0, kernel0 = before.get((pid, tid), (0.0, 0.0))
        seconds[kind_of(names.get(tid, ""))] += (user - user0) + (kernel - kernel0)
    return seconds


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of every thread of ``pid`` so far: each hand-off between the event loop
    and a thread, and each wait for the GIL, is one or two. A thread that ends between two readings drops out of the
    difference; lfsd's threads live as long as the server."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
    return total


def put_all(target: Target, repo: str, bodies: list[bytes], streams: int) -> None:
    """Batch, then PUT every body, ``streams`` connections at once."""
    objects = [{"oid": hashlib.sha256(body).hexdigest(), "size": len(body)} for body in bodies]
    batcher = RawClient(target.url, repo, "bench", target.token)
    entries = [entry for i in range(0, len(objects), 100) for entry in batcher.batch("upload", objects[i : i + 100])]
    failures: list[str] = []

    def stream(first: int) -> None:
        client = RawClient(target.url, repo, "bench", target.token)
        for i in range(first, len(bodies), streams):
            status = client.send(entries[i]["actions"]["upload"], bodies[i])
            if status != 200:
                failures.append(f"PUT {objects[i]['oid']}: {status}")

    workers = [threading.Thread(target=stream, args=(k,)) for k in range(streams)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit(f"{len(failures)} uploads failed, first: {failures[0]}")


def premake(store: Path, bodies: list[bytes]) -> None:
    for body in bodies:
        oid = hashlib.sha256(body).hexdigest()
        (store / "objects" / oid[:2] / oid[2:4]).mkdir(parents=True, exist_ok=True)
    os.sync()


def measure(target: Target, store: Path, repo: str, objects: int, streams: int, premade: bool) -> dict[str, float]:
    """CPU ms per object by kind of thread (and ``total``) for ``objects`` new uploads."""
    put_all(target, repo, [os.urandom(OBJECT_SIZE) for _ in range(WARM_UP)], streams)
    names = thread_names(target.pid)
    bodies = [os.urandom(OBJECT_SIZE) for _ in range(objects)]
    if premade:
        premake(store, bodies)
    before, switched = snapshot([target.pid]), switches(target.pid)
    started = time.perf_counter()
    put_all(target, repo, bodies, streams)
    elapsed = time.perf_counter() - started
    used = cpu_by_kind(before, snapshot([target.pid]), names)
    switched = switches(target.pid) - switched
    figures = {kind: used[kind] * 1000 / objects for kind in KINDS}
    figures["total"] = sum(figures.values())
    figures["mb_per_s"] = objects * OBJECT_SIZE / elapsed / 1e6
    figures["switches"] = switched / objects
    return figures


def settings_env(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """``LFSD_NAME=VALUE`` items as environment variables. A name that is not a setting is refused here: lfsd
    ignores unknown ``LFSD_*`` variables, and a misspelt variant would make an A/A run look like an A/B one."""
    known = {f"LFSD_{name.upper()}" for name in Settings.descriptions()}
    env: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals:
            parser.error(f"{item!r}: expected LFSD_NAME=VALUE")
        if name.startswith("LFSD_") and name not in known:
            parser.error(f"{name}: not an lfsd setting")
        env[name] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--floor", action="store_true", help="the durable floor too, alternated with lfsd")
    parser.add_argument("--premade", action="store_true", help="the shard directories exist (a grown store)")
    parser.add_argument("--env", action="append", default=[], help="LFSD_NAME=VALUE for every lfsd (repeatable)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    second = parser.add_mutually_exclusive_group()
    second.add_argument("--compare", type=Path, default=None, help="an exported tree, run as a second lfsd")
    second.add_argument(
        "--variant", action="append", default=[], help="LFSD_NAME=VALUE for a second lfsd, on top of --env"
    )
    args = parser.parse_args()
    env, variant_env = settings_env(parser, args.env), settings_env(parser, args.variant)
    options = Options(
        repeat=args.repeat,
        git=False,
        profile=False,
        env=env,
        postgres=None,
        floor=args.floor,
        compare=None,
    )
    work = Path(tempfile.mkdtemp(prefix="lfsd-put-threads-", dir=args.work))
    # Nothing is deleted until the end: deleting thousands of files on this disk makes later uploads cost more.
    try:
        servers: list[tuple[str, AbstractContextManager[Target], Path]] = [
            (LFSD, lfsd_target(work / "lfsd", LFSD, {}, 1, options), work / "lfsd" / "data")
        ]
        if args.compare is not None:
            old = lfsd_target(work / "old", OLD, old_tree_env(args.compare), 1, options)
            servers.append((OLD, old, work / "old" / "data"))
        if variant_env:
            servers.append(
                (VARIANT, lfsd_target(work / "variant", VARIANT, variant_env, 1, options), work / "variant" / "data")
            )
        if args.floor:
            servers.append((DURABLE, floor_target(work / "floor", durable=True), work / "floor" / "store"))
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in servers}
        with ExitStack() as stack:
            targets = [(name, stack.enter_context(manager), store) for name, manager, store in servers]
            for number in range(1, args.repeat + 1):
                # Rotated by one each repetition, as bench/small.py does: the disk drifts during a run, and with
                # three servers reversing would leave the same one in the middle every time.
                turn = (number - 1) % len(targets)
                for name, target, store in targets[turn:] + targets[:turn]:
                    figures = measure(target, store, f"bench/raw-{number}", args.objects, args.streams, args.premade)
                    results[name].append(figures)
                    print(f"  {name:<14} {_line(figures)}", flush=True)
        print(f"\nmedians of {args.repeat}, {args.objects} x 100 KiB over {args.streams} connections (CPU ms/object)")
        for name, runs in results.items():
            print(f"  {name:<14} {_line({key: statistics.median(r[key] for r in runs) for key in runs[0]})}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _line(figures: dict[str, float]) -> str:
    parts = "  ".join(f"{kind} {figures[kind]:.3f}" for kind in KINDS)
    return (
        f"total {figures['total']:.3f}  ({parts})  {figures['mb_per_s']:.0f} MB/s  {figures['switches']:.1f} switches"
    )


if __name__ == "__main__":
    main()
