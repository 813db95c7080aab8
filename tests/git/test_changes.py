"""What a push changes, read with the real git: only commits no ref has yet, merges by what they resolve."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lfsd.core.git import ZERO_OID
from lfsd.git.changes import RefUpdate, changed_paths, parse_updates

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin",
}


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0
        self.git("init", "-q", "--initial-branch=main")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.path, env=ENV, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, *paths: str) -> str:
        self.commits += 1
        for name in paths:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"version {self.commits}\n")
            self.git("add", name)
        self.git("commit", "-q", "-m", f"commit {self.commits}")
        return self.git("rev-parse", "HEAD")


def _changed(repo: Repo, *updates: RefUpdate) -> set[str]:
    return set(changed_paths(list(updates), cwd=repo.path))


def test_only_commits_no_ref_has_yet(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    base = repo.commit("a.txt")
    pushed = repo.commit("art/hero.psd", "code/x.c")
    # Rewind main: ``pushed`` is now a commit no ref has, as in a pre-receive hook.
    repo.git("update-ref", "refs/heads/main", base)
    assert _changed(repo, RefUpdate(base, pushed, "refs/heads/main")) == {"art/hero.psd", "code/x.c"}
    # The same commit pushed as a new branch: diffed against what the refs have, not against the empty tree.
    assert _changed(repo, RefUpdate(ZERO_OID, pushed, "refs/heads/new")) == {"art/hero.psd", "code/x.c"}
    # Once a ref has it, pushing it elsewhere brings nothing new.
    repo.git("update-ref", "refs/heads/other", pushed)
    assert _changed(repo, RefUpdate(ZERO_OID, pushed, "refs/heads/new")) == set()
    # A deleted ref brings nothing.
    assert _changed(repo, RefUpdate(pushed, ZERO_OID, "refs/heads/other")) == set()


def test_a_merge_counts_only_what_it_resolves(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    repo.commit("a.txt")
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("art/hero.psd")
    repo.git("checkout", "-q", "main")
    before = repo.commit("code/x.c")
    repo.git("merge", "-q", "--no-edit", "side")
    merge = repo.git("rev-parse", "HEAD")
    repo.git("update-ref", "refs/heads/main", before)
    # ``side`` is a ref: its change to hero.psd is not new; the clean merge changes nothing itself.
    assert _changed(repo, RefUpdate(before, merge, "refs/heads/main")) == set()


def test_the_hooks_input() -> None:
    text = f"{ZERO_OID} {'a' * 40} refs/heads/main\n\n{'b' * 40} {ZERO_OID} refs/heads/old\n"
    assert parse_updates(text) == [
        RefUpdate(ZERO_OID, "a" * 40, "refs/heads/main"),
        RefUpdate("b" * 40, ZERO_OID, "refs/heads/old"),
    ]
    with pytest.raises(ValueError):
        parse_updates("nonsense\n")
