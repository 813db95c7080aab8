"""Pure SSH (git-lfs-transfer) next to HTTP, with the real git-lfs client, on the same machine and data directory.

The SSH transport here is ``tests/ssh/fake_ssh.py``: git-lfs's ``ssh`` is a program that serves the command on a
local pipe, so the figures are the protocol and the server's work (pkt-lines, the session, the upload pipeline, the
store) without SSH's encryption or sshd; each connection is a new process, as with OpenSSH's forced command. HTTP is
``lfsd serve`` on loopback. Prints push and fetch throughput per case; nothing here asserts.

    python bench/ssh.py                      # 1000 x 100 KiB and 1 x 1 GiB
    python bench/ssh.py --objects 100 --big-mib 64
    python bench/ssh.py --big-mib 0 --database-url postgresql://postgres@127.0.0.1/EMPTY_DB
    python bench/ssh.py --objects 0 --big-mib 0   # only the start-up: process start to capability advertisement

Where the time goes for small objects: every SSH connection is a process of its own (as under OpenSSH's forced
command), which imports lfsd and opens the database and store before its first packet (git-lfs opens up to 8), and
each object costs the client two round trips on its connection (``put-object``, then ``verify-object``), each a
database statement or two in that process; the HTTP server is one warm process whose uploads share commits. Measured
here (2 shared cores) the same with SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import GitUser, Server, write_random  # noqa: E402
from tests.ssh.harness import SshSite  # noqa: E402


def _push_and_fetch(user: GitUser, work: Path, files: dict[str, int], tmp: Path, label: str) -> tuple[float, float]:
    for name, size in files.items():
        write_random(work / name, size)
    user.git("add", *files, cwd=work)
    user.git("commit", "-q", "-m", "bench", cwd=work)
    t0 = time.perf_counter()
    user.git("push", "-q", "origin", "main", cwd=work)
    push = time.perf_counter() - t0
    origin = user.git("remote", "get-url", "origin", cwd=work).strip()
    clone = tmp / f"{label}-clone"
    user.git("clone", "-q", origin, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    t0 = time.perf_counter()
    user.git("lfs", "pull", cwd=clone)
    fetch = time.perf_counter() - t0
    shutil.rmtree(clone)
    return push, fetch


def _startup(site: SshSite, repo: str, rounds: int) -> list[float]:
    """Milliseconds from starting a transfer process to the flush that ends its capability advertisement (what the
    client waits for before its first command), then the time to answer ``version 1``; each process quits after."""
    env = {**os.environ, "LFSD_DATA_DIR": str(site.data_dir), "LFSD_TEST_SSH_USER": "bench", "PYTHONPATH": str(ROOT)}
    if site.database_url is not None:
        env["LFSD_DATABASE_URL"] = site.database_url
    command = [sys.executable, "-m", "tests.ssh.fake_ssh", "git@example", f"git-lfs-transfer {repo} download"]
    advertised: list[float] = []
    answered: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        _read_to_flush(child.stdout)
        advertised.append((time.perf_counter() - t0) * 1000)
        child.stdin.write(b"000eversion 1\n0000")
        child.stdin.flush()
        _read_to_flush(child.stdout)
        answered.append((time.perf_counter() - t0) * 1000)
        child.stdin.write(b"0009quit\n0000")
        child.stdin.close()
        child.stdout.read()
        child.wait(30)
    return [statistics.median(advertised), statistics.median(answered)]


def _read_to_flush(stream: IO[bytes]) -> None:
    while (header := stream.read(4)) != b"0000":
        if len(header) < 4:
            raise RuntimeError("the transfer process ended before its advertisement")
        length = int(header, 16)
        if length > 4:
            stream.read(length - 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--object-kib", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=1024, help="0: no large object")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in the temp data directory)")
    parser.add_argument("--startup-rounds", type=int, default=10, help="transfer processes started for the start-up")
    options = parser.parse_args()
    cases: dict[str, dict[str, int]] = {}
    if options.objects:
        cases[f"{options.objects} x {options.object_kib} KiB"] = {
            f"f{i:05d}.bin": options.object_kib * 1024 for i in range(options.objects)
        }
    if options.big_mib:
        cases[f"1 x {options.big_mib} MiB"] = {"big.bin": options.big_mib * 1024 * 1024}
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-ssh-") as name:
        tmp = Path(name)
        site = SshSite(tmp, options.database_url)
        if options.database_url is not None:
            site.cli("migrate")
        server = Server.start(site.data_dir, database_url=options.database_url)
        try:
            site.cli("user", "add", "bench", "--admin")
            token = site.cli("token", "create", "bench").strip().splitlines()[-1]
            if options.startup_rounds:
                site.cli("repo", "create", "bench/startup")
                advertised, answered = _startup(site, "bench/startup", options.startup_rounds)
                print(f"ssh start-up (median of {options.startup_rounds}): capabilities {advertised:.0f} ms,", end=" ")
                print(f"'version 1' answered {answered:.0f} ms")
            print(f"{'case':<22} {'transport':<10} {'push MB/s':>10} {'fetch MB/s':>11}")
            for index, (case, files) in enumerate(cases.items()):
                total = sum(files.values())
                http_user = GitUser(tmp / "home-http", "bench", token, server.url)
                work = http_user.new_repo(tmp / f"http-{index}", tmp / f"http-{index}.git", f"bench/http{index}")
                push, fetch = _push_and_fetch(http_user, work, files, tmp, f"http-{index}")
                print(f"{case:<22} {'http':<10} {total / push / 1e6:10.1f} {total / fetch / 1e6:11.1f}")
                ssh_user = site.user("bench", create=False)
                work = site.working_copy(ssh_user, f"ssh-{index}", f"bench/ssh{index}")
                push, fetch = _push_and_fetch(ssh_user, work, files, tmp, f"ssh-{index}")
                print(f"{case:<22} {'ssh (pipe)':<10} {total / push / 1e6:10.1f} {total / fetch / 1e6:11.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
