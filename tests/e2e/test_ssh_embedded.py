"""The embedded SSH server (``LFSD_SSH_LISTEN``) with the real ssh, git and git-lfs clients: the story of
tests/e2e/test_ssh.py without OpenSSH's sshd, in pure SSH mode (git-lfs-transfer) and, with it turned off on the
server, in hybrid mode (git-lfs 3.3 always tries git-lfs-transfer first and falls back to git-lfs-authenticate)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, Server, free_port, require_git_lfs, sha256_file, write_random
from tests.e2e.sshd import keygen

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["pure", "hybrid"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deployment, int, str]]:
    require_git_lfs()
    if shutil.which("ssh") is None:
        pytest.skip("the ssh client is not installed")
    port = free_port()
    env = {"LFSD_SSH_LISTEN": f"127.0.0.1:{port}"}
    if request.param == "hybrid":
        env["LFSD_SSH_TRANSFER"] = "false"
    server = Server.start(tmp_path / "data", extra_env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.05)
        yield Deployment(server, tmp_path), port, request.param
    finally:
        code = server.stop()
        assert code == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


def _user(deployment: Deployment, port: int, name: str) -> tuple[GitUser, Path]:
    user = deployment.user(name)
    key = deployment.tmp / f"id-{name}"
    deployment.server.cli("ssh", "key", "add", name, stdin=keygen(key))
    host_key = deployment.server.data_dir / "ssh_host_ed25519_key"
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(host_key)], check=True, capture_output=True, text=True)
    known_hosts = deployment.tmp / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public.stdout.strip()}\n")
    user.env["GIT_SSH_COMMAND"] = (
        f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes"
        f" -o UserKnownHostsFile={known_hosts}"
    )
    user.git("config", "--global", "lfs.sshtransfer", "never")
    return user, key


@pytest.mark.timeout(1200)
def test_push_clone_lock_and_a_removed_key_through_the_embedded_server(
    embedded: tuple[Deployment, int, str],
) -> None:
    deployment, port, mode = embedded
    alice, _ = _user(deployment, port, "alice")
    deployment.repo("acme/game", ("alice", "write"))
    url = f"ssh://git@127.0.0.1:{port}/acme/game.git"
    work = deployment.tmp / "work"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", cwd=work)
    oids = {f"{n}.bin": write_random(work / f"{n}.bin", size) for n, size in [("a", 100), ("b", 1_500_000)]}
    (work / "README").write_text("embedded\n")
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "first", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    copy = deployment.tmp / "copy"
    alice.git("clone", "-q", url, str(copy))
    assert (copy / "README").read_text() == "embedded\n"
    assert {name: sha256_file(copy / name) for name in oids} == oids
    assert "Locked a.bin" in alice.git("lfs", "lock", "a.bin", cwd=copy)
    assert "a.bin" in alice.git("lfs", "locks", cwd=work)

    # Only git and git-lfs commands; another login name, or a removed key, gets nowhere.
    ssh = alice.env["GIT_SSH_COMMAND"].split()
    shell = subprocess.run([*ssh, "-p", str(port), "git@127.0.0.1", "sh"], capture_output=True, text=True, timeout=120)
    assert shell.returncode == 1 and "'sh' is not served" in shell.stderr, shell.stderr
    other = subprocess.run([*ssh, "-p", str(port), "root@127.0.0.1", "x"], capture_output=True, text=True, timeout=120)
    assert "Permission denied" in other.stderr, other.stderr
    (line,) = deployment.server.cli("ssh", "key", "list", "alice").stdout.splitlines()[1:]
    deployment.server.cli("ssh", "key", "remove", line.split()[0])
    denied = alice.git("fetch", "origin", cwd=copy, check=False)
    assert "Permission denied (publickey)" in denied, denied

    with urllib.request.urlopen(f"{deployment.server.url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    if mode == "hybrid":
        assert 'lfsd_ssh_exec_commands_total{command="git-lfs-authenticate",outcome="ok"}' in metrics
        assert 'lfsd_ssh_exec_commands_total{command="git-lfs-transfer",outcome="refused"}' in metrics
    else:
        assert 'lfsd_ssh_exec_commands_total{command="git-lfs-transfer",outcome="ok"}' in metrics
        assert 'command="git-lfs-authenticate"' not in metrics
    assert 'lfsd_ssh_exec_commands_total{command="other",outcome="refused"} 1.0' in metrics
    assert 'lfsd_ssh_exec_commands_total{command="git-receive-pack",outcome="ok"} 1.0' in metrics
    sent = [line for line in metrics.splitlines() if line.startswith('lfsd_ssh_channel_bytes_total{direction="sent"}')]
    assert sent and float(sent[0].split()[-1]) > 0
