"""Pure SSH (git-lfs-transfer) next to HTTP, with the real git-lfs client, on the same machine and data directory.

The SSH transport here is ``tests/ssh/fake_ssh.py``: git-lfs's ``ssh`` is a program that serves the command on a
local pipe, so the figures are the protocol and the server's work (pkt-lines, the session, the upload pipeline, the
store) without SSH's encryption or sshd; each connection is a new process, as with OpenSSH's forced command. HTTP is
``lfsd serve`` on loopback. Prints push and fetch throughput per case; nothing here asserts.

    python bench/ssh.py                      # 1000 x 100 KiB and 1 x 1 GiB
    python bench/ssh.py --objects 100 --big-mib 64
    python bench/ssh.py --big-mib 0 --database-url postgresql://postgres@127.0.0.1/EMPTY_DB

Where the time goes for small objects: every SSH connection is a process of its own (as under OpenSSH's forced
command), which imports lfsd and opens the database and store before its first packet (git-lfs opens up to 8), and
each object costs the client two round trips on its connection (``put-object``, then ``verify-object``), each a
database statement or two in that process; the HTTP server is one warm process whose uploads share commits. Measured
here (2 shared cores) the same with SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--object-kib", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=1024, help="0: no large object")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in the temp data directory)")
    options = parser.parse_args()
    cases = {
        f"{options.objects} x {options.object_kib} KiB": {
            f"f{i:05d}.bin": options.object_kib * 1024 for i in range(options.objects)
        },
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
