"""Small objects (issue 17): 1000 x 100 KiB through the real git-lfs client and through raw HTTP.

Prints, per case, throughput, server CPU milliseconds per object and server peak and idle RSS (summed over every
process of the server when ``--workers`` > 1), and the PSS sums beside them: forked workers share their pages (code,
libraries, what the supervisor loaded before forking), which each worker's RSS counts in full; PSS divides each shared
page among the processes that map it, so its sum is what the server costs the machine. A second line splits the CPU
between the event loops (each process's main thread) and the other threads (SQLite's driver thread, executors).
Writes them to ``bench/out/small.json`` and ``bench/out/small.md``. ``--profile`` samples the server with py-spy during
each case and prints its hottest frames (self time), so that a change can be aimed at what costs.

This machine moves a case by ±25 % from run to run, so ``--repeat N`` runs every case N times, interleaved, on new
objects and repositories each time, and reports medians and min-max. ``--floor`` runs the raw cases against a bare
aiohttp server too (bench/floor.py), and the raw and token cases against a durable one (``floor.py --durable``: the
least lfsd's guarantees take), to show how much of lfsd's CPU per object is its own; ``--compare DIR`` runs
every case against an older lfsd tree as well (``DIR/src`` first on ``PYTHONPATH``, e.g. from ``git archive REV``),
old and new alternated, with the ratio new/old. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from tests.e2e.harness import GitUser, Server, free_port, lfsd_env, listening, write_random  # noqa: E402

from cpu_split import snapshot, split, user_kernel  # noqa: E402
from sampling import sampled_peak  # noqa: E402
from small_report import (  # noqa: E402
    COMPARE_HEADER,
    DURABLE,
    FLOOR,
    FLOOR_HEADER,
    LFSD,
    OLD,
    Figure,
    compare_rows,
    floor_rows,
    median_lines,
    report,
    summarize,
    text_table,
    threads_line,
)

OBJECTS = 1000
OBJECT_SIZE = 100 * 1024
PASSWORD = "bench-password-correct-horse"  # noqa: S105 (a throwaway user of a throwaway server)
OUT = ROOT / "bench" / "out"
LFS_JSON = "application/vnd.git-lfs+json"
PSS_SAMPLE = 0.1
IDLE_SETTLE = 1.5  # seconds before a case's idle figures: past the server's trim delay (TRIM_DELAY_SECONDS, 1 s)


def server_pids(root: int) -> list[int]:
    """The server and its worker processes."""
    pids = [root]
    children = Path(f"/proc/{root}/task/{root}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    return pids


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pids: list[int]) -> float:
    """The summed proportional set size of ``pids`` (0 for a process gone meanwhile)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)
    return total / 1024


def pss_peak(pids: list[int]) -> AbstractContextManager[list[float]]:
    """The highest PSS sum of ``pids`` while the block runs."""
    return sampled_peak(lambda: pss_mib(pids), PSS_SAMPLE)


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids``."""
    user = kernel = 0.0
    for pid in pids:
        process_user, process_kernel = user_kernel(Path(f"/proc/{pid}/stat"))
        user += process_user
        kernel += process_kernel
    return user, kernel


@contextmanager
def profiled(pids: list[int], out: Path | None) -> Iterator[list[tuple[str, float]]]:
    """py-spy on every server process while the block runs (only threads holding the GIL: Python CPU, not waits);
    yields the list the top frames are put in."""
    top: list[tuple[str, float]] = []
    spies: list[tuple[subprocess.Popen[bytes], Path]] = []
    if out is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        for pid in pids:
            raw = out.with_name(f"{out.name}-{pid}.txt")
            command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--gil", "--nonblocking"]
            spies.append((subprocess.Popen([*command, "--output", str(raw)], stderr=subprocess.DEVNULL), raw))
        time.sleep(1.0)  # py-spy attaches
    try:
        yield top
    finally:
        for process, _ in spies:
            process.send_signal(2)
        self_time: Counter[str] = Counter()
        for process, raw in spies:
            process.wait(timeout=60)
            if raw.exists():
                for line in raw.read_text().splitlines():
                    stack, _, count = line.rpartition(" ")
                    self_time[stack.rsplit(";", 1)[-1]] += int(count)
        total = sum(self_time.values()) or 1
        top.extend((frame, round(100 * n / total, 1)) for frame, n in self_time.most_common(15))


@dataclass
class Target:
    """A running server the cases are measured on: lfsd, an older lfsd (``--compare``) or the floor (``--floor``)."""

    server: str  # LFSD, OLD or FLOOR
    url: str
    pid: int
    token: str  # the bench user's (the floor takes anything)
    work: Path  # its git repositories go here


def measure(
    target: Target, case: str, workers: int, profile: Path | None, run: Callable[[], object], figures: list[Figure]
) -> None:
    pids = server_pids(target.pid)
    # Idle means idle: the server trims its heap one second after its last transfer (lfsd.http.inflight).
    time.sleep(IDLE_SETTLE)
    idle = sum(_status(pid, "VmRSS:") for pid in pids)
    idle_pss = pss_mib(pids)
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    load = os.getloadavg()[0]
    with (
        profiled(pids, None if profile is None else profile / f"{target.server}-{case}".replace(" ", "_")) as top,
        pss_peak(pids) as peak_pss,
    ):
        threads0 = snapshot(pids)
        user0, kernel0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        run()
        elapsed = time.perf_counter() - t0
        user1, kernel1 = cpu_seconds(pids)
        threads = split(threads0, snapshot(pids))
        user, kernel = user1 - user0, kernel1 - kernel0
    peak = sum(_status(pid, "VmHWM:") for pid in pids)
    per_object = 1000 / OBJECTS
    figure = Figure(
        case,
        workers,
        OBJECTS,
        elapsed,
        OBJECTS * OBJECT_SIZE / elapsed / 1e6,
        (user + kernel) * per_object,
        kernel * per_object,
        peak,
        idle,
        peak_pss[0],
        idle_pss,
        top,
        target.server,
        threads.loop_user * per_object,
        threads.loop_kernel * per_object,
        threads.other_user * per_object,
        threads.other_kernel * per_object,
        load,
    )
    figures.append(figure)
    print(
        f"  {case:<34} {figure.mb_per_s:6.1f} MB/s  cpu {figure.cpu_ms_per_object:5.2f} ms/object "
        f"(kernel {figure.kernel_ms_per_object:4.2f})  "
        f"peak RSS {peak:6.1f} MiB (idle {idle:5.1f}), PSS {figure.peak_pss_mib:6.1f} (idle {idle_pss:5.1f})"
    )
    print(threads_line(figure))
    for frame, share in top[:10]:
        print(f"      {share:5.1f} %  {frame}")


class RawClient:
    """Batch, PUT and GET over one keep-alive connection (what git-lfs does per transfer worker)."""

    def __init__(self, url: str, repo: str, user: str, secret: str) -> None:
        self._host = urlsplit(url).netloc
        self._repo = repo
        self._auth = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        self._conn = http.client.HTTPConnection(self._host, timeout=60)

    def batch(self, operation: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = json.dumps({"operation": operation, "objects": objects}).encode()
        headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON, "Authorization": self._auth}
        status, data = self._request("POST", f"/{self._repo}.git/info/lfs/objects/batch", body, headers)
        assert status == 200, data
        result: list[dict[str, Any]] = json.loads(data)["objects"]
        return result

    def send(self, action: dict[str, Any], body: bytes | None) -> int:
        href = urlsplit(action["href"])
        path = href.path + (f"?{href.query}" if href.query else "")
        status, _ = self._request("PUT" if body is not None else "GET", path, body, dict(action.get("header", {})))
        return status

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        self._conn.request(method, path, body=body, headers=headers)
        response = self._conn.getresponse()
        return response.status, response.read()


def raw_cases(target: Target, repo: str, workers: int, profile: Path | None, figures: list[Figure]) -> None:
    client = RawClient(target.url, f"bench/{repo}", "bench", target.token)
    bodies = [os.urandom(OBJECT_SIZE) for _ in range(OBJECTS)]
    objects = [{"oid": hashlib.sha256(body).hexdigest(), "size": OBJECT_SIZE} for body in bodies]

    def push() -> None:
        entries = [entry for i in range(0, OBJECTS, 100) for entry in client.batch("upload", objects[i : i + 100])]
        for entry, body in zip(entries, bodies, strict=True):
            assert client.send(entry["actions"]["upload"], body) == 200

    def fetch() -> None:
        entries = [entry for i in range(0, OBJECTS, 100) for entry in client.batch("download", objects[i : i + 100])]
        for entry in entries:
            assert client.send(entry["actions"]["download"], None) == 200

    measure(target, "raw HTTP PUT (1 stream)", workers, profile, push, figures)
    measure(target, "raw HTTP GET (1 stream)", workers, profile, fetch, figures)


def git_cases(
    target: Target, name: str, repo: str, secret: str, workers: int, profile: Path | None, figures: list[Figure]
) -> None:
    """Push then clone 1000 new objects with the real client, into the new lfsd repository ``repo``."""
    work = target.work
    user = GitUser(work / f"home-{repo}", "bench", secret, target.url)
    origin = work / f"{repo}.git"
    checkout = user.new_repo(work / f"{repo}-work", origin, f"bench/{repo}")
    for i in range(OBJECTS):
        write_random(checkout / f"f{i:04}.bin", OBJECT_SIZE)
    user.git("add", ".", cwd=checkout)
    user.git("commit", "-q", "-m", "small", cwd=checkout)
    measure(
        target,
        f"git lfs push ({name})",
        workers,
        profile,
        lambda: user.git("push", "-q", "origin", "main", cwd=checkout),
        figures,
    )
    measure(
        target,
        f"git lfs fetch ({name})",
        workers,
        profile,
        lambda: user.git("clone", "-q", str(origin), str(work / f"{repo}-clone")),
        figures,
    )


def repetition(
    target: Target, number: int, git: bool, workers: int, profile: Path | None, figures: list[Figure]
) -> None:
    """Every case once on ``target``, on objects and repositories of their own (``number`` names them)."""
    raw_cases(target, f"raw-{number}", workers, profile, figures)
    if git and target.server == DURABLE:
        # No credentials there: one push and one fetch, beside lfsd's token case.
        git_cases(target, "token", f"token-{number}", target.token, workers, profile, figures)
    elif git and target.server != FLOOR:
        git_cases(target, "token", f"token-{number}", target.token, workers, profile, figures)
        git_cases(target, "password", f"password-{number}", PASSWORD, workers, profile, figures)


def lfsd_cli(data: Path, tree_env: dict[str, str], database_url: str | None, *args: str, stdin: str = "") -> str:
    """``lfsd ARGS`` as the e2e harness's ``cli`` runs it, and on the same tree as the server (``tree_env``)."""
    result = subprocess.run(
        [sys.executable, "-m", "lfsd", *args],
        env=lfsd_env(data, database_url, **tree_env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"lfsd {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


@contextmanager
def postgres_database(postgres: str | None, name: str) -> Iterator[str | None]:
    """A new PostgreSQL database for one server, dropped afterwards (None: SQLite in the data directory)."""
    if postgres is None:
        yield None
        return
    subprocess.run(["psql", postgres + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        yield f"{postgres}/{name}"
    finally:
        subprocess.run(["psql", postgres + "/postgres", "-qc", f"DROP DATABASE {name}"], check=False)


@dataclass
class Options:
    repeat: int
    git: bool
    profile: bool
    env: dict[str, str]  # LFSD_* settings for the servers
    postgres: str | None
    floor: bool
    compare: Path | None


@contextmanager
def lfsd_target(work: Path, server: str, tree_env: dict[str, str], workers: int, options: Options) -> Iterator[Target]:
    """An lfsd server with the bench user, and the repositories every repetition will use made beforehand."""
    data = work / "data"
    data.mkdir(parents=True)
    kind = {LFSD: "new", OLD: "old"}.get(server, "variant")  # bench/put_threads.py runs a variant too
    name = f"lfsd_small_{os.getpid()}_{workers}_{kind}"
    with postgres_database(options.postgres, name) as database_url:

        def lfsd(*args: str, stdin: str = "") -> str:
            return lfsd_cli(data, tree_env, database_url, *args, stdin=stdin)

        lfsd("migrate")
        lfsd("user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n")
        token = lfsd("token", "create", "bench").splitlines()[-1]
        kinds = ("raw", "token", "password") if options.git else ("raw",)
        for number in range(1, options.repeat + 1):
            for kind in kinds:
                lfsd("repo", "create", f"bench/{kind}-{number}")
                lfsd("repo", "grant", f"bench/{kind}-{number}", "bench", "write")
        started = Server.start(
            data,
            args=("--workers", str(workers)) if workers > 1 else (),
            extra_env={**options.env, **tree_env},
            database_url=database_url,
        )
        try:
            yield Target(server, started.url, started.process.pid, token, work)
        finally:
            started.stop()


@contextmanager
def floor_target(work: Path, *, durable: bool = False) -> Iterator[Target]:
    """bench/floor.py on a free port, serving one stored 100 KiB file (``durable``: storing uploads in ``work``)."""
    work.mkdir(parents=True)
    served = work / "object.bin"
    write_random(served, OBJECT_SIZE)
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("floor.py")), str(port), str(served)]
    process = subprocess.Popen([*command, "--durable", str(work / "store")] if durable else command)
    try:
        if not listening(port, process):
            raise SystemExit("bench/floor.py did not start listening")
        yield Target(DURABLE if durable else FLOOR, f"http://127.0.0.1:{port}", process.pid, "-", work)
    finally:
        process.terminate()
        process.wait(timeout=30)


def old_tree_env(tree: Path) -> dict[str, str]:
    """``PYTHONPATH`` for the tree exported at ``tree``, after checking that ``lfsd`` is imported from there and not
    from this worktree's editable install (else the comparison would be new against new)."""
    src = (tree / "src").resolve()
    env = {"PYTHONPATH": str(src)}
    found = subprocess.run(
        [sys.executable, "-c", "import lfsd; print(lfsd.__file__)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(src):
        raise SystemExit(f"--compare {tree}: lfsd is imported from {found}, not from {src}")
    return env


def run(work: Path, workers: int, options: Options) -> list[Figure]:
    """Every case ``options.repeat`` times on each server, the servers' order rotated by one every repetition (AB BA
    for two; ABC BCA CAB for three, where reversing would leave the same server in the middle every time), so that
    what one leaves behind (dirty pages, a busy disk) does not always fall on the same server."""
    figures: list[Figure] = []
    profile_dir = (OUT / f"profile-w{workers}") if options.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        targets = [stack.enter_context(lfsd_target(work / "new", LFSD, {}, workers, options))]
        if options.compare is not None:
            old_env = old_tree_env(options.compare)
            targets.append(stack.enter_context(lfsd_target(work / "old", OLD, old_env, workers, options)))
        if options.floor:
            targets.append(stack.enter_context(floor_target(work / "floor")))
            targets.append(stack.enter_context(floor_target(work / "durable", durable=True)))
        print(f"lfsd, {OBJECTS} x {OBJECT_SIZE // 1024} KiB, {workers} worker(s)")
        time.sleep(1.0)
        for number in range(1, options.repeat + 1):
            turn = (number - 1) % len(targets)
            for target in targets[turn:] + targets[:turn]:
                if options.repeat > 1 or len(targets) > 1:
                    print(f" repetition {number}/{options.repeat}, {target.server}")
                profile = None if profile_dir is None else profile_dir / f"r{number}"
                if profile is not None:
                    profile.mkdir(exist_ok=True)
                repetition(target, number, options.git, workers, profile, figures)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts to compare, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=1, help="run every case N times, interleaved; medians")
    parser.add_argument(
        "--floor", action="store_true", help="the raw cases on a bare and on a durable aiohttp server (floor.py) too"
    )
    parser.add_argument("--compare", type=Path, default=None, help="an older lfsd tree (DIR/src) to run beside")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy during each case")
    parser.add_argument("--no-git", action="store_true", help="only the raw HTTP cases")
    parser.add_argument("--env", action="append", default=[], help="LFSD_NAME=VALUE for the server (repeatable)")
    parser.add_argument(
        "--postgres",
        default=None,
        help="PostgreSQL server URL without a database (postgresql://postgres@127.0.0.1:5432): a new one per run",
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    options = Options(
        repeat=max(1, args.repeat),
        git=not args.no_git,
        profile=args.profile,
        env=dict(item.split("=", 1) for item in args.env),
        postgres=args.postgres,
        floor=args.floor,
        compare=args.compare,
    )
    figures: list[Figure] = []
    for workers in (int(n) for n in args.workers.split(",")):
        # One scratch directory per worker count, deleted once at the end of it: deleting thousands of files on
        # this disk (ext4 without a journal) makes uploads cost more kernel time for minutes afterwards, so nothing
        # is deleted between repetitions.
        work = Path(tempfile.mkdtemp(prefix="lfsd-small-", dir=args.work))
        try:
            figures += run(work, workers, options)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    summaries = summarize(figures)
    if options.repeat > 1:
        print(f"\nmedians of {options.repeat} repetitions [min–max]")
        print("\n".join(median_lines(summaries)))
    if compared := compare_rows(summaries):
        print(f"\nlfsd against the older tree {options.compare} (medians; ratios: medians of the repetitions' ratios)")
        print("\n".join(text_table(COMPARE_HEADER, compared)))
    if floored := floor_rows(summaries):
        print("\nlfsd against the aiohttp floor, bench/floor.py (medians; CPU ms/object)")
        print("\n".join(text_table(FLOOR_HEADER, floored)))
    if floored := floor_rows(summaries, DURABLE):
        print("\nlfsd against the durable floor, bench/floor.py --durable (medians; CPU ms/object)")
        print("\n".join(text_table(FLOOR_HEADER, floored)))
    OUT.mkdir(exist_ok=True)
    (OUT / "small.json").write_text(json.dumps([s.json() for s in summaries], indent=2))
    (OUT / "small.md").write_text(report(summaries, OUT))
    print(f"\nwritten: {OUT / 'small.json'}, {OUT / 'small.md'}")


if __name__ == "__main__":
    main()
