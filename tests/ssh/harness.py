"""The real git-lfs client over pure SSH, through ``fake_ssh``: a local pipe instead of an SSH connection."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import GitUser, cli

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SshSite:
    """An lfsd data directory (no HTTP server needed) and git users who reach it over ``git-lfs-transfer``."""

    tmp: Path
    database_url: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def cli(self, *args: str) -> str:
        return cli(self.data_dir, *args, database_url=self.database_url).stdout

    def user(self, name: str, *, admin: bool = False, create: bool = True) -> GitUser:
        if create:
            self.cli("user", "add", name, *(["--admin"] if admin else []))
        user = GitUser(self.tmp / f"home-{name}", name, "unused", "http://127.0.0.1:9")
        # git-lfs picks the OpenSSH command-line style for a program named ssh.
        wrapper = self.tmp / f"bin-{name}" / "ssh"
        wrapper.parent.mkdir(exist_ok=True)
        env = [f"LFSD_DATA_DIR={self.data_dir}", f"LFSD_TEST_SSH_USER={name}", f"PYTHONPATH={ROOT}"]
        if self.database_url is not None:
            env.append(f"LFSD_DATABASE_URL={self.database_url}")
        wrapper.write_text(f'#!/bin/sh\nexec env {" ".join(env)} {sys.executable} -m tests.ssh.fake_ssh "$@"\n')
        wrapper.chmod(0o755)
        user.env["GIT_SSH_COMMAND"] = str(wrapper)
        user.git("config", "--global", "lfs.sshtransfer", "always")
        return user

    def repo(self, path: str, *grants: tuple[str, str]) -> None:
        self.cli("repo", "create", path)
        for name, level in grants:
            self.cli("repo", "grant", path, name, level)

    def working_copy(self, user: GitUser, name: str, repo: str) -> Path:
        """A working copy whose origin is a bare repository on disk and whose LFS endpoint is lfsd over SSH."""
        work, origin = self.tmp / name, self.tmp / f"{name}-origin.git"
        user.git("init", "-q", "--bare", str(origin))
        user.git("init", "-q", str(work))
        user.git("remote", "add", "origin", str(origin), cwd=work)
        (work / ".lfsconfig").write_text(f'[lfs]\n\turl = "ssh://git@example/{repo}.git"\n')
        user.git("lfs", "track", "*.bin", cwd=work)
        user.git("add", ".lfsconfig", ".gitattributes", cwd=work)
        user.git("commit", "-q", "-m", "lfs setup", cwd=work)
        return work
