"""The real git-lfs client (3.x) over pure SSH (``lfs.sshtransfer=always``): push, clone, locks and permissions.

The transport is ``fake_ssh`` (a local pipe); sshd, keys and the forced-command shell are tested with the SSH front
end. Everything past the channel is the real thing: the client's pkt-lines, the server's protocol and core.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import require_git_lfs, sha256_file, write_random
from tests.ssh.harness import SshSite

pytestmark = pytest.mark.e2e


@pytest.fixture
def site(tmp_path: Path) -> SshSite:
    require_git_lfs()
    return SshSite(tmp_path)


def _push_files(site: SshSite, sizes: dict[str, int]) -> tuple[dict[str, str], Path]:
    alice = site.user("alice")
    site.repo("acme/game", ("alice", "write"))
    work = site.working_copy(alice, "alice-work", "acme/game")
    digests = {name: write_random(work / name, size) for name, size in sizes.items()}
    alice.git("add", *sizes, cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    out = alice.git("push", "-q", "origin", "main", cwd=work)
    assert "error" not in out.lower(), out
    return digests, site.tmp / "alice-work-origin.git"


def _clone_and_check(site: SshSite, name: str, origin: Path, digests: dict[str, str]) -> None:
    reader = site.user(name)
    site.cli("repo", "grant", "acme/game", name, "read")
    clone = site.tmp / f"{name}-clone"
    reader.git("clone", "-q", str(origin), str(clone))
    # The clone's .lfsconfig points at lfsd over SSH: the smudge filter fetched every object through it.
    for file, digest in digests.items():
        assert sha256_file(clone / file) == digest, file


def test_push_and_clone_over_pure_ssh(site: SshSite) -> None:
    sizes = {"a.bin": 1, "b.bin": 100 * 1024, "c.bin": 3 * 1024 * 1024 + 7, "empty.bin": 0}
    digests, origin = _push_files(site, sizes)
    _clone_and_check(site, "bob", origin, digests)


@pytest.mark.slow
def test_an_object_over_100_mib(site: SshSite) -> None:
    digests, origin = _push_files(site, {"big.bin": 101 * 1024 * 1024 + 3})
    _clone_and_check(site, "bob", origin, digests)


def test_a_reader_cannot_push(site: SshSite) -> None:
    alice = site.user("alice")
    site.repo("acme/game", ("alice", "read"))
    work = site.working_copy(alice, "alice-work", "acme/game")
    write_random(work / "a.bin", 1000)
    alice.git("add", "a.bin", cwd=work)
    alice.git("commit", "-q", "-m", "asset", cwd=work)
    out = alice.git("push", "-q", "origin", "main", cwd=work, check=False)
    assert "write access to this repository is required" in out, out


def test_locks_over_pure_ssh(site: SshSite) -> None:
    alice = site.user("alice")
    bob = site.user("bob")
    carol = site.user("carol")
    site.repo("acme/game", ("alice", "write"), ("bob", "write"), ("carol", "read"))
    work = site.working_copy(alice, "alice-work", "acme/game")
    out = alice.git("lfs", "lock", "maps/level 1.bin", cwd=work)
    assert "Locked maps/level 1.bin" in out, out
    listed = alice.git("lfs", "locks", cwd=work)
    assert "maps/level 1.bin" in listed and "alice" in listed, listed

    bob_work = site.working_copy(bob, "bob-work", "acme/game")
    taken = bob.git("lfs", "lock", "maps/level 1.bin", cwd=bob_work, check=False)
    assert "already locked" in taken, taken
    bob.git("lfs", "lock", "b.bin", cwd=bob_work)
    listed = bob.git("lfs", "locks", cwd=bob_work)
    assert "maps/level 1.bin" in listed and "b.bin" in listed, listed

    carol_work = site.working_copy(carol, "carol-work", "acme/game")
    assert "b.bin" in carol.git("lfs", "locks", cwd=carol_work)
    refused = carol.git("lfs", "lock", "c.bin", cwd=carol_work, check=False)
    assert "write access" in refused, refused

    refused = bob.git("lfs", "unlock", "maps/level 1.bin", cwd=bob_work, check=False)
    assert "owned by alice" in refused, refused
    out = alice.git("lfs", "unlock", "--force", "maps/level 1.bin", cwd=work)
    assert "Unlocked" in out, out
    listed = alice.git("lfs", "locks", cwd=work)
    assert "maps/level 1.bin" not in listed and "b.bin" in listed, listed
