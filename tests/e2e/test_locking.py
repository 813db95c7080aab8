"""The real ``git lfs lock`` workflow, and lock races across two lfsd processes."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, Server, require_git_lfs
from tests.support import basic

pytestmark = pytest.mark.e2e

LFS_JSON = "application/vnd.git-lfs+json"


def _clone(user: GitUser, origin: Path, dest: Path) -> Path:
    user.git("clone", "-q", str(origin), str(dest))
    user.git("config", "lfs.locksverify", "true", cwd=dest)
    return dest


def _edit(path: Path, text: str) -> None:
    path.chmod(0o644)  # lockable files are checked out read-only until locked
    path.write_text(text)


def test_lock_workflow_with_the_real_client(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    bob = deployment.user("bob")
    boss = deployment.user("boss")
    deployment.repo("studio/art", ("alice", "write"), ("bob", "write"), ("boss", "admin"))
    origin = deployment.tmp / "origin.git"
    work = alice.new_repo(deployment.tmp / "alice", origin, "studio/art")
    alice.git("config", "lfs.locksverify", "true", cwd=work)
    alice.git("lfs", "track", "--lockable", "*.psd", cwd=work)
    (work / "hero.psd").write_text("v1")
    (work / "other.psd").write_text("o1")
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "art", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    out = alice.git("lfs", "lock", "hero.psd", cwd=work)
    assert "Locked hero.psd" in out, out
    listing = alice.git("lfs", "locks", cwd=work)
    assert "hero.psd" in listing and "alice" in listing
    lock_id = listing.split("ID:")[1].split()[0]
    assert "hero.psd" in alice.git("lfs", "locks", "--path", "hero.psd", cwd=work)
    assert "hero.psd" in alice.git("lfs", "locks", "--id", lock_id, cwd=work)
    assert "hero.psd" not in alice.git("lfs", "locks", "--path", "other.psd", cwd=work)
    verify = alice.git("lfs", "locks", "--verify", cwd=work)
    assert "O hero.psd" in verify, verify  # O: ours

    # Bob changes the file alice holds: his push is stopped by the client's lock verification.
    bob_work = _clone(bob, origin, deployment.tmp / "bob")
    theirs = bob.git("lfs", "locks", "--verify", cwd=bob_work)
    assert "hero.psd\talice" in theirs and "O hero.psd" not in theirs, theirs  # no O: theirs
    _edit(bob_work / "hero.psd", "bob's v2")
    bob.git("commit", "-q", "-am", "bob edits hero", cwd=bob_work)
    out = bob.git("push", "origin", "main", cwd=bob_work, check=False)
    assert "locked" in out.lower() and "hero.psd" in out, out
    assert "rejected" in out or "failed to push" in out, out

    # Alice changes her own locked file: the push goes through.
    _edit(work / "hero.psd", "alice's v2")
    alice.git("commit", "-q", "-am", "alice edits hero", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    # Bob may not unlock alice's lock, not even with --force (write is not admin).
    out = bob.git("lfs", "unlock", "hero.psd", cwd=bob_work, check=False)
    assert "alice" in out or "owned" in out.lower(), out
    out = bob.git("lfs", "unlock", "--force", "hero.psd", cwd=bob_work, check=False)
    assert "admin" in out.lower(), out
    assert "hero.psd" in alice.git("lfs", "locks", cwd=work)

    # The repository admin may force it open.
    boss_work = _clone(boss, origin, deployment.tmp / "boss")
    boss.git("lfs", "unlock", "--force", "hero.psd", cwd=boss_work)
    assert "hero.psd" not in alice.git("lfs", "locks", cwd=work)

    # The owner unlocks her own lock.
    alice.git("lfs", "lock", "other.psd", cwd=work)
    alice.git("lfs", "unlock", "other.psd", cwd=work)
    assert alice.git("lfs", "locks", cwd=work).strip() == ""

    # Operators: list and break locks from the command line.
    bob.git("lfs", "lock", "other.psd", cwd=bob_work)
    listed = deployment.server.cli("locks", "list", "studio/art").stdout
    assert "other.psd" in listed and "bob" in listed
    lock_id = listed.split("\t", 1)[0]
    deployment.server.cli("locks", "unlock", "studio/art", lock_id, "--force")
    assert deployment.server.cli("locks", "list", "studio/art").stdout.strip() == ""
    refused = deployment.server.cli("locks", "unlock", "studio/art", lock_id, "--force", check=False)
    assert refused.returncode != 0 and "no lock" in refused.stderr


def _create(url: str, auth: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"path": "contested/file.psd"}).encode(),
        method="POST",
        headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON, **auth},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_two_processes_grant_one_lock(tmp_path: Path, database_url: str | None) -> None:
    require_git_lfs()
    data = tmp_path / "data"
    key = {"LFSD_SECRET_KEY": os.urandom(24).hex()}
    first = Server.start(data, extra_env=key, database_url=database_url)
    second = Server.start(data, extra_env=key, database_url=database_url)
    try:
        first.cli("user", "add", "alice")
        token = first.cli("token", "create", "alice").stdout.splitlines()[-1]
        first.cli("repo", "create", "studio/art")
        first.cli("repo", "grant", "studio/art", "alice", "write")
        auth = basic("alice", token)
        urls = [f"{server.url}/studio/art.git/info/lfs/locks" for server in (first, second)] * 25
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda url: _create(url, auth), urls))
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 49, statuses
    (winner,) = [body["lock"] for status, body in results if status == 201]
    assert all(body["lock"] == winner for status, body in results if status == 409)
