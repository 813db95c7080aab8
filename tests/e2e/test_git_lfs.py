"""The real git-lfs client against a real lfsd process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, sha256_file, write_random

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def _clone(user: GitUser, origin: Path, dest: Path, env: dict[str, str] | None = None) -> Path:
    user.git("clone", "-q", str(origin), str(dest), env=env)
    return dest


def test_push_clone_pull_fetch_all(any_deployment: Deployment) -> None:
    deployment = any_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    sizes = {"empty.bin": 0, "one.bin": 1, "mib.bin": MiB, "big.bin": 100 * MiB}
    expected = {name: write_random(work / name, size) for name, size in sizes.items()}
    small = work / "small"
    small.mkdir()
    for i in range(300):
        expected[f"small/{i:03}.bin"] = write_random(small / f"{i:03}.bin", 100 + i)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    out = alice.git("push", "-q", "origin", "main", cwd=work)
    assert "error" not in out.lower(), out

    # A second commit changes one file, so that fetch --all has history to fetch.
    old_one = expected["one.bin"]
    expected["one.bin"] = write_random(work / "one.bin", 2)
    alice.git("commit", "-q", "-am", "change", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    clone = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "clone")
    for name, oid in expected.items():
        assert sha256_file(clone / name) == oid, name

    # Clone without smudge, then git lfs pull.
    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert (lazy / "big.bin").stat().st_size < 200  # still a pointer
    alice.git("lfs", "pull", cwd=lazy)
    assert sha256_file(lazy / "big.bin") == expected["big.bin"]

    # fetch --all brings the objects of every ref and every commit, including the old version.
    alice.git("lfs", "fetch", "--all", cwd=lazy)
    objects = lazy / ".git" / "lfs" / "objects" / old_one[:2] / old_one[2:4] / old_one
    assert objects.exists()
    alice.git("lfs", "fsck", cwd=lazy)


def test_two_users_two_repositories_are_isolated(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    bob = deployment.user("bob")
    deployment.repo("alice/art", ("alice", "write"))
    deployment.repo("bob/code", ("bob", "write"))
    work = alice.new_repo(deployment.tmp / "alice-work", deployment.tmp / "alice.git", "alice/art")
    write_random(work / "secret.bin", 5000)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "secret", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    # Bob can clone the Git history (on disk), but lfsd refuses him alice's objects.
    clone = _clone(bob, deployment.tmp / "alice.git", deployment.tmp / "bob-clone", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    out = bob.git("lfs", "pull", cwd=clone, check=False)
    assert "repository not found" in out.lower(), out
    assert (clone / "secret.bin").stat().st_size < 200  # still a pointer

    # Pointing his LFS at his own repository does not help: bob/code does not hold the object.
    bob.git("config", "lfs.url", f"{deployment.server.url}/bob/code.git/info/lfs", cwd=clone)
    out = bob.git("lfs", "pull", cwd=clone, check=False)
    assert "object does not exist" in out.lower(), out
    assert (clone / "secret.bin").stat().st_size < 200, out


def test_interrupted_download_resumes_with_range(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    oid = write_random(work / "big.bin", 8 * MiB)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "big", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    # The state an interrupted download leaves: the first part of the object in lfs/incomplete.
    incomplete = lazy / ".git" / "lfs" / "incomplete"
    incomplete.mkdir(parents=True)
    with (work / "big.bin").open("rb") as src:
        (incomplete / f"{oid}.part").write_bytes(src.read(3 * MiB + 7))
    out = alice.git("lfs", "pull", cwd=lazy, env={"GIT_TRACE": "1"})
    assert "server accepted resume download request" in out, out
    assert sha256_file(lazy / "big.bin") == oid


def test_push_clone_pull_on_s3(s3_deployment: Deployment) -> None:
    deployment = s3_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    sizes = {"empty.bin": 0, "one.bin": 1, "mib.bin": MiB, "multipart.bin": 23 * MiB}
    expected = {name: write_random(work / name, size) for name, size in sizes.items()}
    (work / "small").mkdir()
    for i in range(50):
        expected[f"small/{i:02}.bin"] = write_random(work / "small" / f"{i:02}.bin", 1000 + i)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    clone = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "clone")
    for name, oid in expected.items():
        assert sha256_file(clone / name) == oid, name
    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    alice.git("lfs", "pull", cwd=lazy)
    alice.git("lfs", "fsck", cwd=lazy)
    assert sha256_file(lazy / "multipart.bin") == expected["multipart.bin"]
    assert not any((deployment.server.data_dir / "objects").rglob("*.bin"))  # bodies went to S3, not to disk
    routes = [json.loads(line)["route"] for line in deployment.server.log().splitlines() if '"lfsd.access"' in line]
    if "LFSD_S3_DIRECT" in deployment.env:
        # Bodies went straight to S3; lfsd only answered batch and verify requests.
        assert routes.count("/{repo}/info/lfs/objects/{oid}/verify") == 53
        assert "/{repo}/info/lfs/objects/{oid}" not in routes
    else:
        assert routes.count("/{repo}/info/lfs/objects/{oid}") >= 53
