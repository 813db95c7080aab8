"""``git upload-pack`` and ``git receive-pack --stateless-rpc`` as child processes, streamed both ways.

The request body is written to the child's stdin while its stdout is read, a chunk at a time: a pack of any size
passes through in bounded memory, and neither side can fill a pipe the other is not draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Final

from lfsd.core.git import GitFailed, GitService, Pusher
from lfsd.core.ports import ByteSource

log = logging.getLogger("lfsd.git")

READ_SIZE: Final = 64 * 1024
STDERR_KEPT: Final = 4096
TERMINATE_WAIT: Final = 5.0


class GitProcesses:
    """Implements ``core.ports.GitRpc``. ``hook_env`` is what the pre-receive hook needs to reach the database
    (the Python to run it with, the data directory, the database URL); lfsd's own names, set by the composition
    root."""

    def __init__(self, hook_env: Mapping[str, str], *, git: str = "git") -> None:
        self._hook_env = dict(hook_env)
        self._git = git

    def _env(self, protocol: str | None, pusher: Pusher | None) -> dict[str, str]:
        return child_env(self._hook_env, protocol, pusher)

    def _command(self, service: GitService, *args: str) -> list[str]:
        return [self._git, service.removeprefix("git-"), "--stateless-rpc", *args]

    async def advertise(self, service: GitService, git_dir: Path, protocol: str | None) -> AsyncGenerator[bytes]:
        async for chunk in self._stream(self._command(service, "--advertise-refs", str(git_dir)), None, protocol):
            yield chunk

    async def rpc(
        self, service: GitService, git_dir: Path, body: ByteSource, protocol: str | None, pusher: Pusher | None
    ) -> AsyncGenerator[bytes]:
        async for chunk in self._stream(self._command(service, str(git_dir)), body, protocol, pusher):
            yield chunk

    async def _stream(
        self, command: list[str], body: ByteSource | None, protocol: str | None, pusher: Pusher | None = None
    ) -> AsyncGenerator[bytes]:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if body is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(protocol, pusher),
        )
        assert child.stdout is not None and child.stderr is not None
        errors = asyncio.create_task(_tail(child.stderr))
        feeder = asyncio.create_task(_feed(child, body)) if body is not None else None
        sent = 0
        try:
            while chunk := await child.stdout.read(READ_SIZE):
                sent += len(chunk)
                yield chunk
            if feeder is not None:
                await feeder  # a body that stalled or broke off: its error, not git's
            code = await child.wait()
            if code != 0:
                stderr = (await errors).decode("utf-8", "replace").strip()
                log.warning("%s exited with %s: %s", command[1], code, stderr, extra={"git_stderr": stderr})
                if sent == 0:
                    raise GitFailed()
        finally:
            if feeder is not None:
                feeder.cancel()
            await _stop(child)
            errors.cancel()


def child_env(hook_env: Mapping[str, str], protocol: str | None, pusher: Pusher | None) -> dict[str, str]:
    """The environment of a git child (over HTTP or SSH): lfsd's own, without its GIT_* variables; for a push, who
    pushes and what the pre-receive hook needs (``hook_env``)."""
    # Nothing of the server's own GIT_* environment (GIT_DIR, say) may steer the child.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    if pusher is not None:
        env.update(hook_env)
        env.update(
            {
                "LFSD_PUSH_REPO_ID": str(pusher.repo_id),
                "LFSD_PUSH_USER_ID": str(pusher.user_id),
                "LFSD_PUSH_USER": pusher.name,
                # What receive-pack writes into reflogs, as git http-backend sets it from REMOTE_USER.
                "GIT_COMMITTER_NAME": pusher.name,
                "GIT_COMMITTER_EMAIL": f"{pusher.name}@lfsd",
            }
        )
    return env


async def _feed(child: asyncio.subprocess.Process, body: ByteSource) -> None:
    """Copy the body into the child's stdin, then close it. A failed body read is raised after closing stdin: the
    child sees its input end early and fails on its own, through its normal exit, which removes its quarantined
    objects (a signal does not always: receive-pack's index-pack may outlive it). A child that stopped reading (it
    answered early, or failed) ends the copy quietly."""
    stdin = child.stdin
    assert stdin is not None
    try:
        while chunk := await body.read():
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Drain stderr (a full pipe would block git), keeping its last bytes for the log."""
    kept = b""
    while chunk := await stream.read(READ_SIZE):
        kept = (kept + chunk)[-STDERR_KEPT:]
    return kept


async def _stop(child: asyncio.subprocess.Process) -> None:
    """Wait for a child that is done; end one that is not. Its input is closed first, so that it fails on its own
    and cleans up (a half-received pack in quarantine); SIGTERM if it lingers, SIGKILL if it still does."""
    if child.returncode is not None:
        return
    if child.stdin is not None:
        with contextlib.suppress(OSError):
            child.stdin.close()
    for stop in (None, child.terminate, child.kill):
        if stop is not None:
            with contextlib.suppress(ProcessLookupError):
                stop()
        try:
            await asyncio.wait_for(child.wait(), TERMINATE_WAIT)
            return
        except TimeoutError:
            continue
