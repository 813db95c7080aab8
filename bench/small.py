"""Small objects (issue 17): 1000 x 100 KiB through the real git-lfs client and through raw HTTP.

Prints, per case, throughput, server CPU milliseconds per object and server peak and idle RSS (summed over every
process of the server when ``--workers`` > 1), and the PSS sums beside them: forked workers share their pages (code,
libraries, what the supervisor loaded before forking), which each worker's RSS counts in full; PSS divides each shared
page among the processes that map it, so its sum is what the server costs the machine. Writes them to
``bench/out/small.json`` and ``bench/out/small.md``. ``--profile`` samples the server with py-spy during each case
and prints its hottest frames (self time), so that a change can be aimed at what costs. Nothing here asserts.
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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from tests.e2e.harness import GitUser, Server, cli, write_random  # noqa: E402

from charts import grouped_bars  # noqa: E402
from sampling import sampled_peak  # noqa: E402

OBJECTS = 1000
OBJECT_SIZE = 100 * 1024
PASSWORD = "bench-password-correct-horse"  # noqa: S105 (a throwaway user of a throwaway server)
OUT = ROOT / "bench" / "out"
LFS_JSON = "application/vnd.git-lfs+json"
TICK = os.sysconf("SC_CLK_TCK")
PSS_SAMPLE = 0.1


@dataclass
class Figure:
    case: str
    workers: int
    objects: int
    seconds: float
    mb_per_s: float
    cpu_ms_per_object: float
    kernel_ms_per_object: float  # the part of cpu_ms_per_object spent in the kernel
    peak_rss_mib: float
    idle_rss_mib: float
    peak_pss_mib: float  # sampled every PSS_SAMPLE seconds during the case (the kernel keeps no PSS high-water mark)
    idle_pss_mib: float
    top_frames: list[tuple[str, float]]


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
    user = system = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11]) / TICK
        system += int(fields[12]) / TICK
    return user, system


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


def measure(
    server: Server, case: str, workers: int, profile: Path | None, run: Callable[[], object], figures: list[Figure]
) -> None:
    pids = server_pids(server.process.pid)
    idle = sum(_status(pid, "VmRSS:") for pid in pids)
    idle_pss = pss_mib(pids)
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    with (
        profiled(pids, None if profile is None else profile / case.replace(" ", "_")) as top,
        pss_peak(pids) as peak_pss,
    ):
        user0, system0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        run()
        elapsed = time.perf_counter() - t0
        user1, system1 = cpu_seconds(pids)
        user, system = user1 - user0, system1 - system0
    peak = sum(_status(pid, "VmHWM:") for pid in pids)
    per_object = 1000 / OBJECTS
    figure = Figure(
        case,
        workers,
        OBJECTS,
        elapsed,
        OBJECTS * OBJECT_SIZE / elapsed / 1e6,
        (user + system) * per_object,
        system * per_object,
        peak,
        idle,
        peak_pss[0],
        idle_pss,
        top,
    )
    figures.append(figure)
    print(
        f"  {case:<34} {figure.mb_per_s:6.1f} MB/s  cpu {figure.cpu_ms_per_object:5.2f} ms/object "
        f"(kernel {figure.kernel_ms_per_object:4.2f})  "
        f"peak RSS {peak:6.1f} MiB (idle {idle:5.1f}), PSS {figure.peak_pss_mib:6.1f} (idle {idle_pss:5.1f})"
    )
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


def raw_cases(server: Server, token: str, workers: int, profile: Path | None, figures: list[Figure]) -> None:
    client = RawClient(server.url, "bench/raw", "bench", token)
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

    measure(server, "raw HTTP PUT (1 stream)", workers, profile, push, figures)
    measure(server, "raw HTTP GET (1 stream)", workers, profile, fetch, figures)


def git_cases(
    work: Path, server: Server, name: str, secret: str, workers: int, profile: Path | None, figures: list[Figure]
) -> None:
    user = GitUser(work / f"home-{name}", "bench", secret, server.url)
    origin = work / f"{name}.git"
    repo = user.new_repo(work / f"{name}-work", origin, f"bench/{name}")
    for i in range(OBJECTS):
        write_random(repo / f"f{i:04}.bin", OBJECT_SIZE)
    user.git("add", ".", cwd=repo)
    user.git("commit", "-q", "-m", "small", cwd=repo)
    measure(
        server,
        f"git lfs push ({name})",
        workers,
        profile,
        lambda: user.git("push", "-q", "origin", "main", cwd=repo),
        figures,
    )
    measure(
        server,
        f"git lfs fetch ({name})",
        workers,
        profile,
        lambda: user.git("clone", "-q", str(origin), str(work / f"{name}-clone")),
        figures,
    )


def run(
    work: Path, workers: int, profile: bool, git: bool, env: dict[str, str], database_url: str | None
) -> list[Figure]:
    data = work / "data"
    data.mkdir(parents=True)
    cli(data, "migrate", database_url=database_url)
    cli(data, "user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n", database_url=database_url)
    token = cli(data, "token", "create", "bench", database_url=database_url).stdout.splitlines()[-1]
    for repo in ("raw", "token", "password"):
        cli(data, "repo", "create", f"bench/{repo}", database_url=database_url)
        cli(data, "repo", "grant", f"bench/{repo}", "bench", "write", database_url=database_url)
    server = Server.start(
        data, args=("--workers", str(workers)) if workers > 1 else (), extra_env=env, database_url=database_url
    )
    profile_dir = (OUT / f"profile-w{workers}") if profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    print(f"lfsd, {OBJECTS} x {OBJECT_SIZE // 1024} KiB, {workers} worker(s)")
    try:
        time.sleep(1.0)
        raw_cases(server, token, workers, profile_dir, figures)
        if git:
            git_cases(work, server, "token", token, workers, profile_dir, figures)
            git_cases(work, server, "password", PASSWORD, workers, profile_dir, figures)
    finally:
        server.stop()
    return figures


def report(figures: list[Figure]) -> str:
    """A short Markdown report with SVG charts beside it in ``OUT`` (throughput, CPU per object, peak RSS)."""
    lines = [
        "# lfsd small objects (1000 x 100 KiB)",
        "",
        "Targets (issue 17): server CPU <= 0.9 ms per uploaded object, <= 0.35 ms per downloaded one; "
        "peak RSS < 100 MiB, idle < 60 MiB: with one worker the process's RSS; with several, the PSS sum (the RSS sum "
        "counts the pages the workers share once per worker).",
        "",
        "| case | workers | MB/s | CPU ms/object | of which kernel | peak RSS MiB | idle RSS MiB | peak PSS MiB "
        "| idle PSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.case} | {f.workers} | {f.mb_per_s:.1f} | {f.cpu_ms_per_object:.2f} | {f.kernel_ms_per_object:.2f} "
        f"| {f.peak_rss_mib:.1f} | {f.idle_rss_mib:.1f} | {f.peak_pss_mib:.1f} | {f.idle_pss_mib:.1f} |"
        for f in figures
    ]
    charts: list[tuple[str, str, Callable[[Figure], float], str]] = [
        ("small-throughput.svg", "throughput", lambda f: f.mb_per_s, "MB/s"),
        ("small-cpu.svg", "server CPU per object", lambda f: f.cpu_ms_per_object, "ms"),
        ("small-rss.svg", "server peak RSS", lambda f: f.peak_rss_mib, "MiB"),
    ]
    cases = list(dict.fromkeys(f.case for f in figures))
    series = [f"{n} worker(s)" for n in sorted({f.workers for f in figures})]
    for name, title, value, unit in charts:
        values = {(f.case, f"{f.workers} worker(s)"): value(f) for f in figures}
        (OUT / name).write_text(grouped_bars(title, unit, cases, series, values))
        lines += ["", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts to compare, e.g. 1,2")
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
    figures: list[Figure] = []
    for workers in (int(n) for n in args.workers.split(",")):
        work = Path(tempfile.mkdtemp(prefix="lfsd-small-", dir=args.work))
        try:
            env = dict(item.split("=", 1) for item in args.env)
            database_url = None
            if args.postgres:
                name = f"lfsd_small_{os.getpid()}_{workers}"
                subprocess.run(["psql", args.postgres + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
                database_url = f"{args.postgres}/{name}"
            try:
                figures += run(work, workers, args.profile, not args.no_git, env, database_url)
            finally:
                if database_url is not None:
                    subprocess.run(["psql", args.postgres + "/postgres", "-qc", f"DROP DATABASE {name}"], check=False)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "small.json").write_text(json.dumps([asdict(f) for f in figures], indent=2))
    (OUT / "small.md").write_text(report(figures))
    print(f"\nwritten: {OUT / 'small.json'}, {OUT / 'small.md'}")


if __name__ == "__main__":
    main()
