"""Bare repositories under one root, ``ROOT/OWNER/NAME.git``, each created whole or not at all."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from lfsd.core.errors import Conflict
from lfsd.core.git import GitFailed
from lfsd.core.repo import RepoPath
from lfsd.offload import in_thread

# The hook lfsd installs and owns; rewritten whenever it differs. A push that does not come through lfsd (an
# operator on the server's shell) carries no LFSD_HOOK_PYTHON and is not lfsd's to check.
PRE_RECEIVE: Final = """#!/bin/sh
# Installed by lfsd, which owns and rewrites this file: lock enforcement on push (docs/git-hosting.md).
[ -n "$LFSD_HOOK_PYTHON" ] || exit 0
exec "$LFSD_HOOK_PYTHON" -P -m lfsd hook pre-receive
"""
ENFORCE_LOCKS_KEY: Final = "lfsd.enforceLocks"
REQUIRE_POINTERS_KEY: Final = "lfsd.requirePointers"


class BareRepositories:
    """Implements ``core.ports.GitRepositories``. Several lfsd processes may share ``root`` (one volume): a
    repository is built in a temporary directory beside its place and renamed into it, so a reader sees either
    nothing or a whole repository, and of two creators one wins and the other uses its result."""

    def __init__(self, root: Path, *, git: str = "git") -> None:
        self._root = root
        self._git = git

    def location(self, path: RepoPath) -> Path:
        return self._root / f"{path}.git"

    async def ensure(self, path: RepoPath) -> Path:
        return await in_thread(self.ensure_now, path)

    def ensure_now(self, path: RepoPath) -> Path:
        """``ensure``, blocking (for the CLI and the thread ``ensure`` runs it on)."""
        target = self.location(path)
        if (target / "HEAD").is_file():
            hook = target / "hooks" / "pre-receive"
            if not _has_content(hook, PRE_RECEIVE):
                _install_hook(target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".new-", dir=target.parent))
        try:
            self._run("init", "--quiet", "--bare", "--initial-branch=main", str(building))
            # Partial clone (--filter) needs the server's consent, and its lazy fetches ask for single objects.
            for key in ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"):
                self._run("--git-dir", str(building), "config", "--bool", key, "true")
            for sample in (building / "hooks").glob("*.sample"):
                sample.unlink()
            _install_hook(building)
            try:
                building.rename(target)
            except OSError as exc:
                # Another process made it first: theirs is as good as ours.
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (target / "HEAD").is_file():
                    raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return target

    async def delete(self, path: RepoPath) -> bool:
        return await in_thread(self._delete, path)

    def _delete(self, path: RepoPath) -> bool:
        target = self.location(path)
        if not target.exists():
            return False
        # Out of its place first, in one step: no process ever serves a half-deleted repository.
        doomed = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
        target.rename(doomed / "repo.git")
        shutil.rmtree(doomed)
        return True

    async def rename(self, old: RepoPath, new: RepoPath) -> None:
        await in_thread(self._rename, old, new)

    def _rename(self, old: RepoPath, new: RepoPath) -> None:
        source, target = self.location(old), self.location(new)
        if not source.exists():
            return
        if target.exists():
            raise Conflict(f"a Git repository already exists at {new}")
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)

    def enforces_locks(self, path: RepoPath) -> bool:
        return enforces_locks(self.location(path), git=self._git)

    def set_enforce_locks(self, path: RepoPath, on: bool) -> None:
        """Stored in the bare repository's own config, where the hook reads it: no schema change, and it moves
        with the repository."""
        target = self.ensure_now(path)
        self._run("--git-dir", str(target), "config", "--bool", ENFORCE_LOCKS_KEY, "true" if on else "false")

    def requires_pointers(self, path: RepoPath) -> bool:
        return requires_pointers(self.location(path), git=self._git)

    def set_require_pointers(self, path: RepoPath, on: bool) -> None:
        """Kept beside the lock setting, in the repository's own config, where the hook reads it."""
        target = self.ensure_now(path)
        self._run("--git-dir", str(target), "config", "--bool", REQUIRE_POINTERS_KEY, "true" if on else "false")

    def _run(self, *args: str) -> str:
        result = subprocess.run([self._git, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise GitFailed(f"git {args[0]} failed: {result.stderr.strip()[:500]}")
        return result.stdout


def enforces_locks(git_dir: Path, *, git: str = "git") -> bool:
    """Whether pushes to ``git_dir`` are checked against locks: on unless set off."""
    return _flag(git_dir, ENFORCE_LOCKS_KEY, git) != "false"


def requires_pointers(git_dir: Path, *, git: str = "git") -> bool:
    """Whether pushes to ``git_dir`` must bring LFS files as pointers: off unless set on."""
    return _flag(git_dir, REQUIRE_POINTERS_KEY, git) == "true"


def _flag(git_dir: Path, key: str, git: str) -> str:
    result = subprocess.run(
        [git, "--git-dir", str(git_dir), "config", "--bool", "--get", key], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def _has_content(path: Path, text: str) -> bool:
    try:
        return path.read_text() == text
    except OSError:
        return False


def _install_hook(git_dir: Path) -> None:
    hooks = git_dir / "hooks"
    hooks.mkdir(exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".pre-receive-", dir=hooks)
    with os.fdopen(fd, "w") as out:
        out.write(PRE_RECEIVE)
    temp = Path(name)
    temp.chmod(0o755)  # git runs a hook only when it is executable
    temp.replace(hooks / "pre-receive")
