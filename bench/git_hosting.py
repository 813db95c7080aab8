"""Git hosting throughput (issue 16): push and clone of a repository with ~1 GiB of Git history through lfsd's smart
HTTP, against the same git on the same machine behind ``git daemon`` and behind plain ``git http-backend`` (under
``bench/cgi_server.py``, a minimal CGI server); then one LFS file of 1 GiB pushed and cloned through lfsd.

Prints, per case, MB/s (MB = 10^6 bytes of pack), the ratio lfsd / baseline (target >= 0.8), server CPU seconds
(the server and every child it waited for: git, the hook) and peak RSS: the server process's own high-water mark
(VmHWM, what must stay flat whatever the size) and the peak of the whole process tree, sampled every 20 ms (git's
pack-objects and index-pack included, which the baselines pay too). Writes ``bench/out/git_hosting.json``.

The source repository is generated deterministically (fixed seeds and dates: the same commits every run) with
``git fast-import``: commits that each replace a binary file of random bytes and edit a text file, then repacked
once. It is cached under ``bench/out/cache`` (ignored by git). Nothing here asserts.

    .venv/bin/python bench/git_hosting.py [--quick] [--size-mib 1024] [--lfs-mib 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import GitUser, Server, cli, free_port, sha256_file, write_random  # noqa: E402

from sampling import sampled_peak  # noqa: E402

OUT = ROOT / "bench" / "out"
CACHE = OUT / "cache"
TICK = os.sysconf("SC_CLK_TCK")
BINARY_FILE = 2 * 1024 * 1024  # random bytes per commit
TEXT_LINES = 400  # lines of a text file rewritten (a few of them changed) per commit
BINARY_SLOTS = 64  # binary paths reused in turn: old versions stay in history only
TEXT_SLOTS = 16
SEED = 16
EPOCH = 1_700_000_000


# --- the source repository ---------------------------------------------------------------------------------------


def _text(rng: random.Random, commit: int, slot: int) -> bytes:
    """Source-like text: mostly the same lines every version, a few changed (what deltas compress)."""
    lines = [f"int function_{slot}_{n}(int x) {{ return x * {n} + {slot}; }} /* line {n} */" for n in range(TEXT_LINES)]
    for _ in range(8):
        n = rng.randrange(TEXT_LINES)
        lines[n] = f"int function_{slot}_{n}(int x) {{ return x ^ {rng.getrandbits(32)}; }} /* commit {commit} */"
    return ("\n".join(lines) + "\n").encode()


def _fast_import_stream(total: int, out: Callable[[bytes], object]) -> None:
    rng = random.Random(SEED)
    commits = max(1, total // BINARY_FILE)
    for i in range(commits):
        binary = rng.randbytes(BINARY_FILE)
        text = _text(rng, i, i % TEXT_SLOTS)
        when = EPOCH + 60 * i
        message = f"commit {i}\n".encode()
        out(b"commit refs/heads/main\n")
        out(f"committer Bench <bench@example.com> {when} +0000\n".encode())
        out(f"data {len(message)}\n".encode() + message)
        out(f"M 100644 inline data/blob-{i % BINARY_SLOTS:02}.bin\ndata {len(binary)}\n".encode())
        out(binary + b"\n")
        out(f"M 100644 inline src/module-{i % TEXT_SLOTS:02}.c\ndata {len(text)}\n".encode())
        out(text + b"\n")


def source_repo(size_mib: int) -> Path:
    """The bare source repository of about ``size_mib`` MiB of history, generated once and cached."""
    repo = CACHE / f"source-{size_mib}m.git"
    if (repo / "lfsd-bench-complete").exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    started = time.monotonic()
    print(f"generating {size_mib} MiB of history in {repo} (once) ...", flush=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    importer = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=repo, stdin=subprocess.PIPE)
    assert importer.stdin is not None
    _fast_import_stream(size_mib * 1024 * 1024, importer.stdin.write)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    # One pack with deltas, as a served repository has after its first gc.
    subprocess.run(["git", "-C", str(repo), "repack", "-adq", "--window=10"], check=True)
    (repo / "lfsd-bench-complete").touch()
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)
    return repo


def pack_bytes(repo: Path) -> int:
    return sum(pack.stat().st_size for pack in (repo / "objects" / "pack").glob("*.pack"))


# --- measuring a server ------------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and of every child it has waited for."""
    fields = _stat(pid)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def tree_peak(root: int) -> AbstractContextManager[list[float]]:
    """The highest summed VmRSS (KiB) of ``root`` and its descendants while the block runs, sampled every 20 ms."""
    return sampled_peak(lambda: sum(_status_kib(pid, "VmRSS:") for pid in _tree(root)), 0.02)


def settle(pid: int, timeout: float = 10.0) -> None:
    """Wait until the server's children (git, still finishing after the client is done) have exited and been
    reaped, so that their CPU time is in the server's."""
    deadline = time.monotonic() + timeout
    while len(_tree(pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)


@dataclass
class Figure:
    server: str
    case: str
    bytes: int
    seconds: float
    mb_per_s: float
    cpu_seconds: float
    process_idle_rss_mib: float  # the server process's RSS before the case
    process_peak_rss_mib: float  # the server process's own VmHWM during the case
    tree_peak_rss_mib: float  # sampled: server + its children (git)


def measure(server: str, case: str, pid: int, size: int, run: Callable[[], object], figures: list[Figure]) -> None:
    idle = _status_kib(pid, "VmRSS:") / 1024
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    cpu0 = cpu_seconds(pid)
    with tree_peak(pid) as peak:
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        settle(pid)
    figure = Figure(
        server,
        case,
        size,
        round(elapsed, 2),
        round(size / elapsed / 1e6, 1),
        round(cpu_seconds(pid) - cpu0, 2),
        round(idle, 1),
        round(_status_kib(pid, "VmHWM:") / 1024, 1),
        round(peak[0] / 1024, 1),
    )
    figures.append(figure)
    print(
        f"  {server:<14} {case:<12} {figure.mb_per_s:7.1f} MB/s  {elapsed:6.1f} s  cpu {figure.cpu_seconds:6.1f} s  "
        f"RSS: server {idle:5.1f} -> peak {figure.process_peak_rss_mib:5.1f} MiB, "
        f"with git {figure.tree_peak_rss_mib:6.1f} MiB",
        flush=True,
    )


def git(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def push_and_clone(
    name: str,
    pid: int,
    urls: list[str],
    source: Path,
    work: Path,
    figures: list[Figure],
    env: dict[str, str] | None = None,
) -> None:
    """Each case once per URL (empty repositories of the same server; the ratios take the best run): push the
    whole history into each, then clone the first that many times."""
    size = pack_bytes(source)
    clone = work / f"clone-{name}.git"
    for url in urls:
        measure(name, "push", pid, size, partial(git, "-C", str(source), "push", "-q", url, "main", env=env), figures)
    for _ in urls:
        measure(name, "clone", pid, size, lambda: git("clone", "-q", "--bare", urls[0], str(clone), env=env), figures)
        shutil.rmtree(clone)


# --- the servers -------------------------------------------------------------------------------------------------


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def spawned(command: list[str], port: int, log: Path, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[0]} did not start: {log.read_text()}")
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_daemon(source: Path, work: Path, figures: list[Figure], repeat: int) -> None:
    base = work / "daemon"
    for n in range(repeat):
        subprocess.run(["git", "init", "-q", "--bare", str(base / f"big{n}.git")], check=True)
    port = free_port()
    exec_path = subprocess.run(["git", "--exec-path"], check=True, capture_output=True, text=True).stdout.strip()
    # git-daemon itself: through the ``git`` wrapper it would be that process's child, its CPU never in ours.
    command = [
        str(Path(exec_path) / "git-daemon"),
        "--reuseaddr",
        "--export-all",
        "--enable=receive-pack",
        f"--port={port}",
    ]
    command += ["--listen=127.0.0.1", f"--base-path={base}", str(base)]
    with spawned(command, port, work / "daemon.log") as process:
        urls = [f"git://127.0.0.1:{port}/big{n}.git" for n in range(repeat)]
        push_and_clone("git daemon", process.pid, urls, source, work, figures)
    shutil.rmtree(base)


def bench_http_backend(source: Path, work: Path, figures: list[Figure], repeat: int) -> None:
    base = work / "cgi"
    for n in range(repeat):
        subprocess.run(["git", "init", "-q", "--bare", str(base / f"big{n}.git")], check=True)
        git("-C", str(base / f"big{n}.git"), "config", "http.receivepack", "true")
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "cgi_server.py"), "--port", str(port), "--root", str(base)]
    with spawned(command, port, work / "cgi.log") as process:
        urls = [f"http://127.0.0.1:{port}/big{n}.git" for n in range(repeat)]
        push_and_clone("http-backend", process.pid, urls, source, work, figures)
    shutil.rmtree(base)


def bench_lfsd(source: Path, work: Path, lfs_mib: int, figures: list[Figure], repeat: int) -> None:
    data = work / "lfsd" / "data"
    data.mkdir(parents=True)
    cli(data, "migrate")
    cli(data, "user", "add", "bench")
    token = cli(data, "token", "create", "bench").stdout.splitlines()[-1]
    for repo in ("bench/lfs", *(f"bench/big{n}" for n in range(repeat))):
        cli(data, "repo", "create", repo)
        cli(data, "repo", "grant", repo, "bench", "write")
    server = Server.start(data)
    try:
        user = GitUser(work / "home", "bench", token, server.url)
        pid = server.process.pid
        urls = [f"{server.url}/bench/big{n}.git" for n in range(repeat)]
        push_and_clone("lfsd", pid, urls, source, work, figures, env=user.env)
        if lfs_mib:
            lfs_file(user, server, work, lfs_mib, figures)
    finally:
        server.stop()
    shutil.rmtree(work / "lfsd")


def lfs_file(user: GitUser, server: Server, work: Path, size_mib: int, figures: list[Figure]) -> None:
    """One LFS file of ``size_mib`` MiB through the same remote: push (upload), then a fresh clone (download)."""
    url = f"{server.url}/bench/lfs.git"
    repo = work / "lfs-work"
    user.git("clone", "-q", url, str(repo))
    user.git("lfs", "track", "*.bin", cwd=repo)
    oid = write_random(repo / "huge.bin", size_mib * 1024 * 1024)
    user.git("add", ".", cwd=repo)
    user.git("commit", "-q", "-m", "huge", cwd=repo)
    size = size_mib * 1024 * 1024
    pid = server.process.pid
    measure("lfsd", "LFS push", pid, size, lambda: user.git("push", "-q", "origin", "main", cwd=repo), figures)
    shutil.rmtree(repo)
    copy = work / "lfs-clone"
    measure("lfsd", "LFS clone", pid, size, lambda: user.git("clone", "-q", url, str(copy)), figures)
    if sha256_file(copy / "huge.bin") != oid:
        raise SystemExit("the cloned LFS file differs from the pushed one")
    shutil.rmtree(copy)


def ratios(figures: list[Figure]) -> dict[str, float]:
    by: dict[tuple[str, str], float] = {}
    for f in figures:
        by[(f.server, f.case)] = max(by.get((f.server, f.case), 0.0), f.mb_per_s)
    out: dict[str, float] = {}
    for baseline in ("git daemon", "http-backend"):
        for case in ("push", "clone"):
            if (baseline, case) in by and ("lfsd", case) in by:
                out[f"{case} lfsd/{baseline} (best of each)"] = round(by[("lfsd", case)] / by[(baseline, case)], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128 MiB of history, a 128 MiB LFS file")
    parser.add_argument("--size-mib", type=int, default=None, help="MiB of Git history (default 1024)")
    parser.add_argument("--lfs-mib", type=int, default=None, help="MiB of the LFS file (default 1024; 0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each Git case; the ratios take the best")
    parser.add_argument("--no-baseline", action="store_true", help="lfsd only")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    size_mib = args.size_mib or (128 if args.quick else 1024)
    lfs_mib = args.lfs_mib if args.lfs_mib is not None else (128 if args.quick else 1024)
    source = source_repo(size_mib)
    print(f"Git hosting: {pack_bytes(source) / 1e6:.0f} MB pack, {size_mib} MiB of history; LFS file {lfs_mib} MiB")
    figures: list[Figure] = []
    work = Path(tempfile.mkdtemp(prefix="lfsd-git-hosting-", dir=args.work))
    try:
        if not args.no_baseline:
            bench_daemon(source, work, figures, args.repeat)
            bench_http_backend(source, work, figures, args.repeat)
        bench_lfsd(source, work, lfs_mib, figures, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = ratios(figures)
    for name, ratio in summary.items():
        print(f"  {name:<44} {ratio:5.2f}x (target >= 0.8)")
    OUT.mkdir(exist_ok=True)
    (OUT / "git_hosting.json").write_text(json.dumps({"figures": [asdict(f) for f in figures], "ratios": summary}))
    print(f"\nwritten: {OUT / 'git_hosting.json'}")


if __name__ == "__main__":
    main()
