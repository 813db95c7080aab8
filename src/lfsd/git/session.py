"""``git upload-pack`` and ``git receive-pack`` for one SSH session: the real git, speaking on the session's own
standard input and output (not ``--stateless-rpc``: an SSH channel is one long conversation)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from lfsd.core.git import GitService, Pusher
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_command import SessionStreams
from lfsd.git.process import READ_SIZE, child_env
from lfsd.git.repositories import BareRepositories


class GitSession:
    """Implements ``lfsd.ssh.shell.GitLauncher``. ``hook_env`` as for ``GitProcesses``: what the pre-receive hook
    needs to reach the database."""

    def __init__(self, repos: BareRepositories, hook_env: Mapping[str, str], *, git: str = "git") -> None:
        self._repos = repos
        self._hook_env = dict(hook_env)
        self._git = git

    async def run(
        self,
        service: GitService,
        repo: RepoPath,
        pusher: Pusher | None,
        protocol: str | None,
        streams: SessionStreams | None = None,
    ) -> int:
        """git's exit status. Without ``streams`` it reads and writes this process's standard input and output (the
        forced command); with them, it is copied to and from the channel in bounded chunks (the embedded server)."""
        git_dir = await self._repos.ensure(repo)
        command = [self._git, service.removeprefix("git-"), str(git_dir)]
        env = child_env(self._hook_env, protocol, pusher)
        if streams is None:
            child = await asyncio.create_subprocess_exec(*command, env=env)
            return await child.wait()
        pipe = asyncio.subprocess.PIPE
        child = await asyncio.create_subprocess_exec(*command, env=env, stdin=pipe, stdout=pipe, stderr=pipe)
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        feeding = asyncio.create_task(_feed(streams, child.stdin))
        try:
            await asyncio.gather(
                _copy(child.stdout, streams, streams.write), _copy(child.stderr, streams, streams.write_stderr)
            )
            return await child.wait()
        finally:
            feeding.cancel()
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()


async def _feed(streams: SessionStreams, stdin: asyncio.StreamWriter) -> None:
    """The client's input into git's, then end of input. A channel that breaks off ends git's input the same way
    (git then fails, and a half-received push is discarded by git itself)."""
    try:
        while data := await streams.read(READ_SIZE):
            stdin.write(data)
            await stdin.drain()
    except Exception:  # noqa: S110 - whatever broke the channel, git's input just ends
        pass
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


async def _copy(source: asyncio.StreamReader, streams: SessionStreams, write: Callable[[bytes], None]) -> None:
    while data := await source.read(READ_SIZE):
        write(data)
        await streams.drain()
