"""A stand-in for ``ssh`` that runs the git-lfs-transfer server side locally, on its standard input and output.

git-lfs starts ``ssh [options] git@host 'git-lfs-transfer <repo> <operation>'``; this program ignores the options
and the host, and serves the command as the user ``LFSD_TEST_SSH_USER`` (the key lookup and the forced-command shell
belong to the SSH front end; here the transport is a local pipe). The server's settings come from the environment
(``LFSD_DATA_DIR``, ``LFSD_DATABASE_URL``), as for ``lfsd``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys

from lfsd.config import Settings
from lfsd.core.auth import Identity
from lfsd.core.errors import LfsError
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.ssh.pipes import widen
from lfsd.ssh.transfer import serve
from lfsd.ssh_composition import open_transfer_core

_OPTIONS_WITH_VALUE = frozenset({"-p", "-l", "-o", "-i", "-F", "-c", "-E", "-S", "-J", "-b", "-e", "-m"})


def remote_command(argv: list[str]) -> list[str]:
    """The words of the remote command: what follows the options and the host."""
    rest: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif rest:
            rest.append(arg)
        elif arg in _OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            rest.append(arg)
    return shlex.split(" ".join(rest[1:]))


async def _main(argv: list[str]) -> int:
    words = remote_command(argv)
    if len(words) != 3 or words[0] != "git-lfs-transfer":
        print(f"fake ssh: not a git-lfs-transfer command: {words!r}", file=sys.stderr)
        return 2
    operation = Operation.for_batch(words[2])
    if operation is None:
        print(f"fake ssh: unknown operation {words[2]!r}", file=sys.stderr)
        return 2
    settings = Settings()
    loop = asyncio.get_running_loop()
    for fd in (0, 1):
        widen(fd)
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    name = os.environ["LFSD_TEST_SSH_USER"]
    identity = await _identity(settings, name)
    if identity is None:
        print(f"lfsd: the user {name!r} is unknown or disabled", file=sys.stderr)
        return 5
    async with open_transfer_core(settings) as core:
        try:
            path = RepoPath.parse(words[1].lstrip("/"))  # ssh://host/OWNER/NAME.git gives the path with its slash
        except LfsError as exc:
            print(f"lfsd: {exc.message}", file=sys.stderr)
            return 5
        await serve(core, identity, path, operation, reader, writer)
    await writer.drain()
    return 0


async def _identity(settings: Settings, name: str) -> Identity | None:
    from lfsd.resources import open_metadata

    meta = await open_metadata(settings)
    try:
        user = await meta.users.find(name)
    finally:
        await meta.close()
    if user is None or user.disabled:
        return None
    return Identity(user_id=user.id, name=user.name, is_admin=user.is_admin)


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    sys.exit(asyncio.run(_main(sys.argv[1:])))


if __name__ == "__main__":
    main()
