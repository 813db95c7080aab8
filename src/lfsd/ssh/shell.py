"""One SSH command, served for the user of an SSH key: the forced command of OpenSSH (``lfsd ssh shell``) and the
embedded server run the same code.

The key is checked now (removed, or its user disabled: refused), the command parsed strictly
(``core.ssh_command``), the repository authorized as over HTTP (read to fetch, write to push; a private repository
the user cannot see is "not found"), then: ``git-lfs-authenticate`` prints the HTTP endpoint and a scoped credential,
``git-lfs-transfer`` runs the pure SSH protocol when this server serves it, and the Git services run the real git.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from lfsd.core.auth import Identity, Permission, Repo, effective_permission, require
from lfsd.core.errors import LfsError, NotFound, Unauthorized
from lfsd.core.git import GitService, Pusher
from lfsd.core.operation import Operation
from lfsd.core.ports import RepoDirectory
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_auth import SshAuthSigner, SshKeyDirectory
from lfsd.core.ssh_command import GitCommand, LfsCommand, LfsProgram, SessionStreams, parse_ssh_command

log = logging.getLogger("lfsd.ssh")

# What git passes in GIT_PROTOCOL (``version=2``); anything else is dropped, as over HTTP.
_PROTOCOL_RE: Final = re.compile(r"[A-Za-z0-9=:._,-]{1,256}")
TRANSFER_DISABLED: Final = "git-lfs-transfer is not enabled on this server"


class GitLauncher(Protocol):
    async def run(
        self,
        service: GitService,
        repo: RepoPath,
        pusher: Pusher | None,
        protocol: str | None,
        streams: SessionStreams | None = None,
    ) -> int: ...


# git-lfs-transfer for one session (lfsd.ssh.transfer.serve, wired by the composition root when it is served):
# the user, repository and operation, and the channel (None: this process's standard input and output).
Transfer = Callable[[Identity, RepoPath, Operation, SessionStreams | None], Awaitable[int]]


@dataclass(frozen=True)
class ShellServices:
    keys: SshKeyDirectory
    repos: RepoDirectory
    signer: SshAuthSigner
    base_url: str  # the server's public URL, without a trailing slash
    clock: Callable[[], float]
    git: GitLauncher
    transfer: Transfer | None = None  # None: git-lfs-transfer is refused (not served, or turned off)


class Refused(Exception):
    """The one line the client reads (``lfsd: …``) and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def _authorize(repos: RepoDirectory, identity: Identity, path: RepoPath, needed: Permission) -> Repo:
    """As ``AccessControl.authorize``: a server admin's first push creates the repository (private)."""
    repo, grant = await repos.find_with_grant(path, identity.user_id)
    if repo is None:
        if needed >= Permission.WRITE and identity.is_admin:
            return await repos.create(path, is_public=False)
        raise NotFound("repository not found")
    require(identity, effective_permission(identity, repo, grant), needed)
    return repo


def authenticate_response(services: ShellServices, key_id: int, repo: RepoPath, operation: Operation) -> bytes:
    token = services.signer.issue(key_id, repo, operation, int(services.clock()))
    document = {
        "href": f"{services.base_url}/{repo}.git/info/lfs",
        "header": {"Authorization": f"Bearer {token}"},
        "expires_in": services.signer.ttl_seconds,
    }
    return json.dumps(document).encode("utf-8") + b"\n"


async def serve_command(
    services: ShellServices,
    key_id: int,
    command_text: str | None,
    protocol: str | None,
    write: Callable[[bytes], None],
    streams: SessionStreams | None = None,
) -> int:
    """Serve ``command_text`` for the user of key ``key_id``; the exit status. Refusals raise ``Refused``.
    ``streams``: the channel, when the command runs inside the server (None: this process's own stdin/stdout)."""
    try:
        command = parse_ssh_command(command_text)
        identity = await services.keys.identity_for_key(key_id)
        if identity is None:
            raise Unauthorized("this SSH key was removed or its user disabled")
        if isinstance(command, GitCommand):
            return await _git(services, identity, command, protocol, streams)
        return await _lfs(services, key_id, identity, command, write, streams)
    except LfsError as exc:
        raise Refused(exc.message) from None


async def _git(
    services: ShellServices,
    identity: Identity,
    command: GitCommand,
    protocol: str | None,
    streams: SessionStreams | None,
) -> int:
    repo = await _authorize(services.repos, identity, command.repo, command.service.needed)
    pushing = command.service is GitService.RECEIVE_PACK
    pusher = Pusher(repo.id, identity.user_id, identity.name) if pushing else None
    wanted = protocol if protocol is not None and _PROTOCOL_RE.fullmatch(protocol) else None
    log.info("ssh %s %s by %s", command.service, repo.path, identity.name)
    return await services.git.run(command.service, repo.path, pusher, wanted, streams)


async def _lfs(
    services: ShellServices,
    key_id: int,
    identity: Identity,
    command: LfsCommand,
    write: Callable[[bytes], None],
    streams: SessionStreams | None,
) -> int:
    needed = Permission.WRITE if command.operation is Operation.UPLOAD else Permission.READ
    if command.program is LfsProgram.TRANSFER and services.transfer is None:
        raise Refused(TRANSFER_DISABLED)
    repo = await _authorize(services.repos, identity, command.repo, needed)
    log.info("ssh %s %s %s by %s", command.program, repo.path, command.operation, identity.name)
    if command.program is LfsProgram.AUTHENTICATE:
        write(authenticate_response(services, key_id, repo.path, command.operation))
        return 0
    assert services.transfer is not None
    return await services.transfer(identity, repo.path, command.operation, streams)
