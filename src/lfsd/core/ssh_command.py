"""What an SSH client may ask for, parsed strictly from ``SSH_ORIGINAL_COMMAND`` (or an exec request).

Exactly these, with the repository as ``OWNER/NAME``, ``OWNER/NAME.git`` or either with a leading ``/`` (git sends
``git-upload-pack '/OWNER/NAME.git'`` for ``ssh://git@host/OWNER/NAME.git``, and without the slash for
``git@host:OWNER/NAME.git``), quoted or not:

- ``git-lfs-authenticate <repo> <download|upload>``: the HTTP endpoint and a short-lived credential;
- ``git-lfs-transfer <repo> <download|upload>``: the pure SSH transfer protocol;
- ``git-upload-pack <repo>`` and ``git-receive-pack <repo>``: Git itself.

Anything else is refused with a message fit for one line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from lfsd.core.errors import BadRequest, InvalidRepoPath
from lfsd.core.git import GitService
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.text import has_control_characters

MAX_COMMAND_LENGTH: Final = 4096


class LfsProgram(StrEnum):
    AUTHENTICATE = "git-lfs-authenticate"
    TRANSFER = "git-lfs-transfer"


@dataclass(frozen=True, slots=True)
class LfsCommand:
    program: LfsProgram
    repo: RepoPath
    operation: Operation


@dataclass(frozen=True, slots=True)
class GitCommand:
    service: GitService
    repo: RepoPath


class RefusedCommand(BadRequest):
    default_message = "this SSH server serves git and git-lfs commands only"


def _repo(value: str) -> RepoPath:
    try:
        return RepoPath.parse(value.removeprefix("/").removesuffix("/"))
    except InvalidRepoPath:
        shown = value[:80] + ("…" if len(value) > 80 else "")
        raise RefusedCommand(f"{shown!r} is not a repository path like OWNER/NAME.git") from None


def parse_ssh_command(text: str | None) -> LfsCommand | GitCommand:
    if text is None or not text.strip():
        raise RefusedCommand("interactive logins are not allowed: this SSH server serves git and git-lfs only")
    if len(text) > MAX_COMMAND_LENGTH or has_control_characters(text):
        raise RefusedCommand("the command is too long or holds control characters")
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError:
        raise RefusedCommand("the command's quotes do not match") from None
    if not words:
        raise RefusedCommand()
    program, args = words[0], words[1:]
    if program in (LfsProgram.AUTHENTICATE, LfsProgram.TRANSFER):
        if len(args) != 2:
            raise RefusedCommand(f"usage: {program} <repository> <download|upload>")
        operation = Operation.for_batch(args[1])
        if operation is None:
            raise RefusedCommand(f"{program}: the operation is download or upload, not {args[1][:40]!r}")
        return LfsCommand(LfsProgram(program), _repo(args[0]), operation)
    service = GitService.parse(program)
    if service is not None:
        if len(args) != 1:
            raise RefusedCommand(f"usage: {program} <repository>")
        return GitCommand(service, _repo(args[0]))
    shown = program[:40]
    raise RefusedCommand(f"{shown!r} is not served here: this SSH server serves git and git-lfs commands only")


class SessionStreams(Protocol):
    """An SSH channel's standard streams, for a command that runs in the server's process (the embedded server);
    the forced command of OpenSSH passes None and lets git use its own standard input and output."""

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the client's input."""

    def write(self, data: bytes) -> None: ...

    def write_stderr(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...
