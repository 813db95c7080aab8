"""Git and Git LFS over a real OpenSSH sshd: keys from lfsd (AuthorizedKeysCommand), the forced ``lfsd ssh shell``,
and the real git + git-lfs client in pure SSH mode (``git-lfs-transfer`` through the forced command; the hybrid mode,
``git-lfs-authenticate`` then HTTP, runs against the embedded server in tests/e2e/test_ssh_embedded.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, sha256_file, write_random
from tests.e2e.sshd import Sshd, keygen, require_sshd

pytestmark = pytest.mark.e2e


@dataclass
class SshWorld:
    deployment: Deployment
    sshd: Sshd

    def user(self, name: str) -> GitUser:
        """A git + git-lfs user with an SSH key registered in lfsd, reaching sshd with it, hybrid mode."""
        user = self.deployment.user(name)
        key = self.deployment.tmp / f"id-{name}"
        self.deployment.server.cli("ssh", "key", "add", name, stdin=keygen(key))
        user.env["GIT_SSH_COMMAND"] = self.sshd.client_command(self.deployment.tmp, key)
        # Ignored by git-lfs 3.3 (it always tries git-lfs-transfer first); later clients would honour it.
        user.git("config", "--global", "lfs.sshtransfer", "always")
        return user


@pytest.fixture
def ssh_world(deployment: Deployment) -> Iterator[SshWorld]:
    require_sshd()
    server = deployment.server
    sshd = Sshd.start(deployment.tmp / "sshd", server.data_dir.resolve(), server.url)
    try:
        yield SshWorld(deployment, sshd)
    finally:
        sshd.stop()
        assert "Traceback" not in sshd.log(), sshd.log()


def _commit(user: GitUser, work: Path, message: str) -> None:
    user.git("add", ".", cwd=work)
    user.git("commit", "-q", "-m", message, cwd=work)


# Every git-lfs command opens several SSH sessions, each starting two lfsd processes (the key lookup and the forced
# shell): slow on a loaded machine, hence the time allowed.
@pytest.mark.timeout(1200)
def test_push_clone_and_locks_over_ssh_and_revocation_at_once(ssh_world: SshWorld) -> None:
    tmp = ssh_world.deployment.tmp
    alice, bob = ssh_world.user("alice"), ssh_world.user("bob")
    ssh_world.deployment.repo("acme/game", ("alice", "write"), ("bob", "write"))
    url = ssh_world.sshd.url("acme/game")

    work = tmp / "alice-work"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", "--lockable", cwd=work)
    oids = {f"{name}.bin": write_random(work / f"{name}.bin", size) for name, size in [("a", 10), ("b", 300_000)]}
    oids["c.bin"] = write_random(work / "c.bin", 2_000_000)
    (work / "README").write_text("over ssh\n")
    _commit(alice, work, "first")
    alice.git("push", "-q", "origin", "main", cwd=work)
    for oid in oids.values():
        assert any(ssh_world.deployment.server.data_dir.rglob(oid)), "an LFS object is not in lfsd's store"

    copy = tmp / "bob-copy"
    bob.git("clone", "-q", url, str(copy))
    assert (copy / "README").read_text() == "over ssh\n"
    assert {name: sha256_file(copy / name) for name in oids} == oids

    # Locks over SSH (git-lfs-transfer's lock commands), and the pre-receive hook sees the pusher.
    assert "Locked b.bin" in bob.git("lfs", "lock", "b.bin", cwd=copy)
    assert "b.bin" in alice.git("lfs", "locks", cwd=work) and "bob" in alice.git("lfs", "locks", cwd=work)
    (work / "b.bin").chmod(0o644)
    write_random(work / "b.bin", 1000)
    _commit(alice, work, "touches bob's lock")
    refused = alice.git("push", "origin", "main", cwd=work, check=False)
    assert "b.bin - bob" in refused and "rejected" in refused, refused
    bob.git("lfs", "unlock", "b.bin", cwd=copy)
    alice.git("push", "-q", "origin", "main", cwd=work)

    # A removed key stops at once, at sshd (the key command prints nothing); so does a disabled user's key.
    (listed,) = [line for line in ssh_world.deployment.server.cli("ssh", "key", "list", "bob").stdout.splitlines()[1:]]
    ssh_world.deployment.server.cli("ssh", "key", "remove", listed.split()[0])
    denied = bob.git("fetch", "origin", cwd=copy, check=False)
    assert "Permission denied (publickey)" in denied, denied
    ssh_world.deployment.server.cli("user", "disable", "alice")
    denied = alice.git("fetch", "origin", cwd=work, check=False)
    assert "Permission denied (publickey)" in denied, denied


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_large_object_over_ssh(ssh_world: SshWorld) -> None:
    tmp = ssh_world.deployment.tmp
    alice = ssh_world.user("alice")
    ssh_world.deployment.repo("acme/big", ("alice", "write"))
    url = ssh_world.sshd.url("acme/big")
    work = tmp / "work"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", cwd=work)
    oid = write_random(work / "big.bin", 110 * 1024 * 1024)
    _commit(alice, work, "big")
    alice.git("push", "-q", "origin", "main", cwd=work)
    copy = tmp / "copy"
    alice.git("clone", "-q", url, str(copy))
    assert sha256_file(copy / "big.bin") == oid
