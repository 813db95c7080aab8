"""Client CPU of a 1 GiB fetch (issue 17): lfsd against a plain sendfile server (bench/sink.py), with curl and with
the real ``git lfs fetch``.

Both serve the same cached file; the client's CPU seconds (user + system, from the children's rusage: git and
git-lfs included) are what a server's framing, headers and write sizes cost the client. For the git-lfs case the
sink also answers the Batch API for that one object. Repetitions are interleaved and the medians printed with each
server's response headers. Writes ``bench/out/bigfetch.json``. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.e2e.client import batch, curl, curl_command  # noqa: E402
from tests.e2e.harness import GitUser, Server, cli, free_port, write_random  # noqa: E402

from run import wait_port  # noqa: E402
from small import OUT  # noqa: E402

GiB = 1024 * 1024 * 1024
T = TypeVar("T")


def client_cpu(action: dict[str, Any]) -> tuple[float, float]:
    """Wall and CPU seconds of one curl GET of ``action``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = curl(action)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.stdout == f"200 {GiB}", result.stdout + result.stderr
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def alternated(cases: dict[str, T], repetition: int) -> list[tuple[str, T]]:
    """The cases in order on even repetitions and reversed on odd ones (ABBA), so that whatever the run before
    leaves behind (a deleted 1 GiB file, a warm cache) does not always fall on the same server."""
    ordered = list(cases.items())
    return ordered if repetition % 2 == 0 else ordered[::-1]


def git_fetch_cpu(user: GitUser, repo: Path, lfs_url: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``git lfs fetch`` of the 1 GiB object from ``lfs_url`` into an empty cache."""
    shutil.rmtree(repo / ".git" / "lfs" / "objects", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    user.git("-c", f"lfs.url={lfs_url}", "lfs", "fetch", cwd=repo)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert any((repo / ".git" / "lfs" / "objects").rglob("*")), "git lfs fetch fetched nothing"
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pointer_repo(user: GitUser, work: Path, oid: str) -> Path:
    """A working copy whose one commit holds a pointer to the 1 GiB object (written as text: no clean filter run)."""
    repo = user.new_repo(work / "fetcher", work / "origin.git", "bench/big")
    (repo / "big.bin").write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {GiB}\n")
    user.git("add", "big.bin", cwd=repo)
    user.git("commit", "-q", "-m", "pointer", cwd=repo)
    return repo


def report(title: str, runs: dict[str, list[tuple[float, float]]], headers: dict[str, list[str]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    print(title)
    for name, measured in runs.items():
        wall = statistics.median(w for w, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        figures[name] = {"mb_per_s": GiB / wall / 1e6, "client_cpu_s": cpu, "headers": headers.get(name, [])}
        print(f"  {name:<16} {GiB / wall / 1e6:7.0f} MB/s  client CPU {cpu:5.2f} s")
        for header in figures[name]["headers"]:
            print(f"      {header}")
    ratio = figures["lfsd"]["client_cpu_s"] / (figures["sendfile server"]["client_cpu_s"] or 1.0)
    print(f"  client CPU lfsd / sendfile server = {ratio:.2f} (target <= 1.0)")
    return figures


def git_lfs_version() -> str:
    out = subprocess.run(["git", "lfs", "version"], capture_output=True, text=True, check=False).stdout
    return out.split()[0].split("/")[-1] if out else "?"


def headers_of(action: dict[str, Any]) -> list[str]:
    command = curl_command(action, "-D", "-", "-r", "0-0")
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).stdout
    return [line for line in out.splitlines() if line and not line[0].isdigit()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--git-repeat", type=int, default=3, help="git lfs fetch repetitions (0: curl only)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lfsd-bigfetch-"))
    sink: subprocess.Popen[bytes] | None = None
    server: Server | None = None
    try:
        one_gib = work / "1g.bin"
        oid = write_random(one_gib, GiB)
        data = work / "data"
        data.mkdir()
        cli(data, "migrate")
        cli(data, "user", "add", "bench")
        token = cli(data, "token", "create", "bench").stdout.splitlines()[-1]
        cli(data, "repo", "create", "bench/big")
        cli(data, "repo", "grant", "bench/big", "bench", "write")
        server = Server.start(data)
        upload = batch(server.url, "bench/big", "bench", token, "upload", oid, GiB)["actions"]["upload"]
        assert curl(upload, "-T", str(one_gib)).stdout.startswith("200")
        lfsd = batch(server.url, "bench/big", "bench", token, "download", oid, GiB)["actions"]["download"]
        port = free_port()
        sink_script = str(Path(__file__).with_name("sink.py"))
        # lfsd's own stored copy, not the source file: the sink served the source file (written through the page
        # cache) 20 % faster than the stored copy (written with O_DIRECT, then read back into the cache), a property
        # of the files' cached pages (their folio sizes, most likely), not of the servers.
        stored = data / "objects" / oid[:2] / oid[2:4] / oid
        sink = subprocess.Popen([sys.executable, sink_script, str(port), str(stored), "-", oid])
        wait_port(port)
        plain = {"href": f"http://127.0.0.1:{port}/file", "header": {}}
        cases = {"lfsd": lfsd, "sendfile server": plain}
        for action in cases.values():
            client_cpu(action)  # both files in the page cache before measuring
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for repetition in range(args.repeat):
            for name, action in alternated(cases, repetition):
                runs[name].append(client_cpu(action))
        headers = {name: headers_of(action) for name, action in cases.items()}
        figures: dict[str, Any] = {
            "curl": report(f"1 GiB GET with curl, {args.repeat} interleaved repetitions, medians", runs, headers)
        }
        if args.git_repeat > 0:
            user = GitUser(work / "home", "bench", token, server.url)
            repo = pointer_repo(user, work, oid)
            urls = {
                "lfsd": f"{server.url}/bench/big.git/info/lfs",
                "sendfile server": f"http://127.0.0.1:{port}/x/info/lfs",
            }
            git_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
            for repetition in range(args.git_repeat):
                for name, url in alternated(urls, repetition):
                    git_runs[name].append(git_fetch_cpu(user, repo, url))
            title = (
                f"1 GiB git lfs fetch (git-lfs {git_lfs_version()}), {args.git_repeat} interleaved repetitions, medians"
            )
            figures["git lfs fetch"] = report(title, git_runs, headers)
        OUT.mkdir(exist_ok=True)
        (OUT / "bigfetch.json").write_text(json.dumps(figures, indent=2))
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
