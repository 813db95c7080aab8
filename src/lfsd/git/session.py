"""``git upload-pack`` and ``git receive-pack`` for one SSH session: the real git, speaking on the session's own
standard input and output (not ``--stateless-rpc``: an SSH channel is one long conversation)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from lfsd.core.git import GitService, Pusher
from lfsd.core.repo import RepoPath
from lfsd.git.process import child_env
from lfsd.git.repositories import BareRepositories


class GitSession:
    """Implements ``lfsd.ssh.shell.GitLauncher``. ``hook_env`` as for ``GitProcesses``: what the pre-receive hook
    needs to reach the database."""

    def __init__(self, repos: BareRepositories, hook_env: Mapping[str, str], *, git: str = "git") -> None:
        self._repos = repos
        self._hook_env = dict(hook_env)
        self._git = git

    async def run(self, service: GitService, repo: RepoPath, pusher: Pusher | None, protocol: str | None) -> int:
        """git's exit status; it reads and writes this process's standard input and output."""
        git_dir = await self._repos.ensure(repo)
        child = await asyncio.create_subprocess_exec(
            self._git, service.removeprefix("git-"), str(git_dir), env=child_env(self._hook_env, protocol, pusher)
        )
        return await child.wait()
