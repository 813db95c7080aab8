"""lfsd hosting the Git repositories too: one URL for code and LFS, the LFS API's permissions, locks enforced on
push. Real ``lfsd serve``, real ``git`` and ``git lfs``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, sha256_file, write_random

pytestmark = pytest.mark.e2e


def _edit(path: Path, text: str) -> None:
    path.chmod(0o644)  # lockable files are checked out read-only until locked
    path.write_text(text)


def _url(deployment: Deployment, repo: str) -> str:
    return f"{deployment.server.url}/{repo}.git"


def test_clone_push_and_a_second_clone_with_no_lfs_url(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    # `lfsd repo create` made the bare repository, with lfsd's hook in it.
    bare = deployment.server.data_dir / "git" / "acme" / "game.git"
    assert (bare / "HEAD").is_file() and "lfsd hook pre-receive" in (bare / "hooks" / "pre-receive").read_text()
    url = _url(deployment, "acme/game")
    work = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", cwd=work)
    oid = write_random(work / "level.bin", 200_000)
    (work / "main.c").write_text("int main(void) { return 0; }\n")
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "first", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    # The objects went to lfsd's store, found from the clone URL alone: no lfs.url anywhere.
    assert not (work / ".lfsconfig").exists()
    assert "lfs.url" not in alice.git("config", "--list", "--show-origin", cwd=work)
    assert any(deployment.server.data_dir.rglob(oid)), "the LFS object is not in lfsd's store"

    # A second clone over protocol v2 (git's default) and one over v0 both get code and LFS content.
    for version in ("2", "0"):
        copy = deployment.tmp / f"copy-v{version}"
        alice.git("-c", f"protocol.version={version}", "clone", "-q", url, str(copy))
        assert (copy / "main.c").read_text() == "int main(void) { return 0; }\n"
        assert sha256_file(copy / "level.bin") == oid

    # A push after the clone: fetch sees it.
    (work / "main.c").write_text("int main(void) { return 1; }\n")
    alice.git("commit", "-q", "-am", "second", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    copy = deployment.tmp / "copy-v2"
    alice.git("pull", "-q", "--ff-only", cwd=copy)
    assert (copy / "main.c").read_text() == "int main(void) { return 1; }\n"

    # Shallow and partial clones: the newest commit only, or no blobs until checkout asks for them.
    shallow = deployment.tmp / "shallow"
    alice.git("clone", "-q", "--depth", "1", url, str(shallow))
    assert alice.git("rev-list", "--count", "HEAD", cwd=shallow).strip() == "1"
    assert sha256_file(shallow / "level.bin") == oid
    partial = deployment.tmp / "partial"
    alice.git("clone", "-q", "--filter=blob:none", url, str(partial))
    missing = alice.git("rev-list", "--objects", "--all", "--missing=print", cwd=partial)
    assert any(line.startswith("?") for line in missing.splitlines()), "the server ignored the filter"
    assert (partial / "main.c").read_text() == "int main(void) { return 1; }\n"
    assert sha256_file(partial / "level.bin") == oid


def test_wrong_credentials_read_only_pushes_and_missing_repositories(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    reader = deployment.user("reader")
    deployment.user("stranger")
    deployment.repo("acme/game", ("alice", "write"), ("reader", "read"))
    url = _url(deployment, "acme/game")
    work = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(work))
    (work / "a.txt").write_text("a\n")
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "a", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    wrong = GitUser(deployment.tmp / "home-wrong", "alice", "lfsd_" + "x" * 43, deployment.server.url)
    out = wrong.git("clone", url, str(deployment.tmp / "wrong"), check=False)
    assert "Authentication failed" in out or "401" in out, out

    reading = deployment.tmp / "reader"
    reader.git("clone", "-q", url, str(reading))
    (reading / "b.txt").write_text("b\n")
    reader.git("add", ".", cwd=reading)
    reader.git("commit", "-q", "-m", "b", cwd=reading)
    out = reader.git("push", "origin", "main", cwd=reading, check=False)
    assert "403" in out and "write access" in out, out

    out = alice.git("clone", _url(deployment, "acme/missing"), str(deployment.tmp / "missing"), check=False)
    assert "repository not found" in out or "404" in out, out
    # A private repository is as missing to a user without access, as the LFS API answers.
    token = _token(deployment, "stranger")
    stranger = GitUser(deployment.tmp / "home-stranger", "stranger", token, deployment.server.url)
    out = stranger.git("clone", url, str(deployment.tmp / "stranger"), check=False)
    assert "repository not found" in out or "404" in out, out
    assert "a.txt" not in out


def _token(deployment: Deployment, name: str) -> str:
    return deployment.server.cli("token", "create", name).stdout.strip().splitlines()[-1]


def test_an_admins_first_push_creates_the_repository(deployment: Deployment) -> None:
    boss = deployment.user("boss", admin=True)
    work = deployment.tmp / "boss"
    boss.git("init", "-q", str(work))
    (work / "README").write_text("new\n")
    boss.git("add", ".", cwd=work)
    boss.git("commit", "-q", "-m", "new", cwd=work)
    boss.git("push", "-q", _url(deployment, "acme/fresh"), "main", cwd=work)
    assert (deployment.server.data_dir / "git" / "acme" / "fresh.git" / "HEAD").is_file()
    copy = deployment.tmp / "copy"
    boss.git("clone", "-q", _url(deployment, "acme/fresh"), str(copy))
    assert (copy / "README").read_text() == "new\n"


def _commit(user: GitUser, work: Path, path: str, text: str, message: str) -> None:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        _edit(target, text)
    else:
        target.write_text(text)
    user.git("add", path, cwd=work)
    user.git("commit", "-q", "-m", message, cwd=work)


def test_pushes_that_change_another_users_locked_file_are_refused(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    bob = deployment.user("bob")
    deployment.repo("acme/game", ("alice", "write"), ("bob", "write"))
    url = _url(deployment, "acme/game")
    mine = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(mine))
    alice.git("lfs", "track", "--lockable", "*.psd", cwd=mine)
    alice.git("add", ".gitattributes", cwd=mine)
    _commit(alice, mine, "art/hero.psd", "v1", "hero")
    _commit(alice, mine, "code/main.c", "v1", "code")
    alice.git("push", "-q", "origin", "main", cwd=mine)
    out = alice.git("lfs", "lock", "art/hero.psd", cwd=mine)
    assert "Locked art/hero.psd" in out, out
    lock_id = alice.git("lfs", "locks", cwd=mine).split("ID:")[1].split()[0]

    theirs = deployment.tmp / "bob"
    bob.git("clone", "-q", url, str(theirs))  # bob's client does not verify locks: the server must
    _commit(bob, theirs, "art/hero.psd", "bob's v2", "bob edits hero")
    out = bob.git("push", "origin", "main", cwd=theirs, check=False)
    assert "pre-receive hook declined" in out, out
    assert f"art/hero.psd - alice (lock {lock_id})" in out, out
    # The same commit on a new branch is refused too: it is diffed against what the other refs already have.
    out = bob.git("push", "origin", "main:bob-branch", cwd=theirs, check=False)
    assert "pre-receive hook declined" in out and "art/hero.psd" in out, out

    # Bob's work touching only unrelated paths goes through.
    bob.git("reset", "-q", "--hard", "origin/main", cwd=theirs)
    _commit(bob, theirs, "code/main.c", "bob's v2", "bob edits code")
    bob.git("push", "-q", "origin", "main", cwd=theirs)

    # Alice changes the file she locked: accepted.
    alice.git("pull", "-q", "--rebase", cwd=mine)
    _commit(alice, mine, "art/hero.psd", "alice's v2", "alice edits hero")
    alice.git("push", "-q", "origin", "main", cwd=mine)

    # Once alice unlocks, bob's change goes through.
    alice.git("lfs", "unlock", "art/hero.psd", cwd=mine)
    bob.git("pull", "-q", "--rebase", cwd=theirs)
    _commit(bob, theirs, "art/hero.psd", "bob's v3", "bob edits hero again")
    bob.git("push", "-q", "origin", "main", cwd=theirs)
    alice.git("pull", "-q", "--rebase", cwd=mine)
    assert (mine / "art" / "hero.psd").read_text() == "bob's v3"


def test_lock_enforcement_is_per_repository(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    bob = deployment.user("bob")
    deployment.repo("acme/game", ("alice", "write"), ("bob", "write"))
    url = _url(deployment, "acme/game")
    mine = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(mine))
    _commit(alice, mine, "art/hero.psd", "v1", "hero")
    alice.git("push", "-q", "origin", "main", cwd=mine)
    alice.git("lfs", "lock", "art/hero.psd", cwd=mine)
    theirs = deployment.tmp / "bob"
    bob.git("clone", "-q", url, str(theirs))
    _commit(bob, theirs, "art/hero.psd", "bob's v2", "bob edits hero")
    assert "pre-receive hook declined" in bob.git("push", "origin", "main", cwd=theirs, check=False)

    out = deployment.server.cli("repo", "enforce-locks", "acme/game", "off").stdout
    assert "off" in out
    bob.git("push", "-q", "origin", "main", cwd=theirs)
    deployment.server.cli("repo", "enforce-locks", "acme/game", "on")
    _commit(bob, theirs, "art/hero.psd", "bob's v3", "bob again")
    assert "pre-receive hook declined" in bob.git("push", "origin", "main", cwd=theirs, check=False)


def test_the_pointer_check_refuses_plain_files_that_gitattributes_gives_to_lfs(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    url = _url(deployment, "acme/game")
    work = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.psd", cwd=work)
    alice.git("add", ".gitattributes", cwd=work)
    alice.git("commit", "-q", "-m", "track psd", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    # A file committed with the LFS filter switched off: a plain blob where .gitattributes asks for a pointer.
    (work / "art").mkdir()
    (work / "art" / "hero.psd").write_bytes(b"layers " * 300)
    _add_without_filter(alice, work, "art/hero.psd")
    alice.git("commit", "-q", "-m", "plain psd", cwd=work)

    # Off by default: the push goes through.
    alice.git("push", "-q", "origin", "main", cwd=work)
    assert "on" in deployment.server.cli("repo", "require-pointers", "acme/game", "on").stdout
    (work / "art" / "hero.psd").write_bytes(b"more layers " * 300)
    _add_without_filter(alice, work, "art/hero.psd")
    alice.git("commit", "-q", "-m", "plain psd again", cwd=work)
    out = alice.git("push", "origin", "main", cwd=work, check=False)
    assert "pre-receive hook declined" in out and "* art/hero.psd (refs/heads/main)" in out, out
    assert "git lfs migrate import" in out, out

    # Rewritten as LFS (only the unpushed commit), the push is accepted, and the object is in lfsd's store.
    alice.git(
        "lfs",
        "migrate",
        "import",
        "--include=*.psd",
        "--include-ref=refs/heads/main",
        "--exclude-ref=refs/remotes/origin/main",
        "--yes",
        cwd=work,
    )
    alice.git("push", "-q", "origin", "main", cwd=work)
    copy = deployment.tmp / "copy"
    alice.git("clone", "-q", url, str(copy))
    assert (copy / "art" / "hero.psd").read_bytes() == b"more layers " * 300


def _add_without_filter(user: GitUser, work: Path, path: str) -> None:
    """Stage ``path`` as a plain blob, as a client without git-lfs would."""
    blob = user.git("hash-object", "-w", "--no-filters", path, cwd=work).strip()
    user.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=work)


def _quarantines(bare: Path) -> list[Path]:
    return [p for p in (bare / "objects").iterdir() if "incoming" in p.name]


def test_a_client_killed_mid_push_leaves_the_repository_as_it_was(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    url = _url(deployment, "acme/game")
    bare = deployment.server.data_dir / "git" / "acme" / "game.git"
    work = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(work))
    _commit(alice, work, "README", "v1\n", "first")
    alice.git("push", "-q", "origin", "main", cwd=work)
    before = alice.git("--git-dir", str(bare), "rev-parse", "main").strip()

    # A big commit of incompressible plain Git content, so the pack takes a while to send.
    write_random(work / "data.raw", 96 * 1024 * 1024)
    alice.git("add", "data.raw", cwd=work)
    alice.git("commit", "-q", "-m", "big", cwd=work)
    push = subprocess.Popen(
        ["git", "-c", "http.postBuffer=65536", "push", "-q", "origin", "main"],
        cwd=work,
        env=alice.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Kill the client (git and its remote helper) once the server is receiving the pack into quarantine.
        deadline = time.monotonic() + 120
        while not _quarantines(bare) and push.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _quarantines(bare), "the push never reached receive-pack"
    finally:
        os.killpg(push.pid, signal.SIGKILL)
        push.wait()

    # receive-pack is stopped and its half-received pack removed; the ref never moved.
    deadline = time.monotonic() + 60
    while _quarantines(bare) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _quarantines(bare), "a half-received pack was left behind"
    assert alice.git("--git-dir", str(bare), "rev-parse", "main").strip() == before
    alice.git("--git-dir", str(bare), "fsck", "--no-progress")
    # The same push, whole this time, goes through.
    alice.git("push", "-q", "origin", "main", cwd=work)
    assert (
        alice.git("--git-dir", str(bare), "rev-parse", "main").strip()
        == alice.git("rev-parse", "HEAD", cwd=work).strip()
    )


def _backdate(deployment: Deployment, statement: str) -> None:
    """Move recorded times back by two days (the embedded SQLite database), as if the grace period had passed."""
    db = sqlite3.connect(deployment.server.data_dir / "lfsd.db")
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_gc_unreachable_unlinks_what_no_ref_points_to_then_collects_it(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    deployment.repo("acme/elsewhere")  # no Git pushed here: lfsd cannot know what it references, so it keeps all
    url = _url(deployment, "acme/game")
    work = deployment.tmp / "alice"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", cwd=work)
    kept = write_random(work / "kept.bin", 10_000)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "kept", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    dropped = write_random(work / "dropped.bin", 20_000)
    alice.git("add", "dropped.bin", cwd=work)
    alice.git("commit", "-q", "-m", "oops", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    # The commit that pointed to dropped.bin is rewritten away: no ref reaches it any more.
    alice.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    alice.git("push", "-q", "--force", "origin", "main", cwd=work)

    def gc(*args: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(deployment.server.cli("gc", "--json", *args).stdout)
        return document

    # Links younger than the grace period are kept: a pointer may be on its way.
    assert gc("--unreachable", "--dry-run")["unreachable"] == [{"repo": "acme/game", "objects": [], "relinked": 0}]
    _backdate(deployment, "UPDATE repo_objects SET created_at = datetime(created_at, '-2 days')")
    dry = gc("--unreachable", "--dry-run")
    assert dry["unreachable"] == [{"repo": "acme/game", "objects": [dropped], "relinked": 0}]
    done = gc("--unreachable")
    assert done["unreachable"] == [{"repo": "acme/game", "objects": [dropped], "relinked": 0}]
    assert done["objects"] == 0  # unlinked now: collected one grace period on, not before
    _backdate(deployment, "UPDATE objects SET unlinked_at = datetime(unlinked_at, '-2 days')")
    assert gc()["objects"] == 1
    assert not any(deployment.server.data_dir.rglob(dropped)) and any(deployment.server.data_dir.rglob(kept))
    # The referenced object still clones.
    copy = deployment.tmp / "copy"
    alice.git("clone", "-q", url, str(copy))
    assert sha256_file(copy / "kept.bin") == kept
