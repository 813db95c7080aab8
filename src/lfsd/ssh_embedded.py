"""Composition of the embedded SSH server (``LFSD_SSH_LISTEN``): its host key, generated once into the data
directory, and the same services as OpenSSH's forced command, over the server's own database pool."""

from __future__ import annotations

import os
import secrets
import time
from contextlib import AsyncExitStack
from pathlib import Path

from lfsd.config import Settings, host_of, port_of
from lfsd.core.ssh_auth import SshAuthSigner
from lfsd.db.metadata import Metadata
from lfsd.db.ssh_keys import SqlSshKeys
from lfsd.git.repositories import BareRepositories
from lfsd.git.session import GitSession
from lfsd.hook import hook_environment
from lfsd.observability.metrics import Metrics
from lfsd.offload import in_thread
from lfsd.ssh.server import EmbeddedSsh, new_host_key, start_embedded_ssh
from lfsd.ssh.shell import ShellServices, Transfer

HOST_KEY_FILE = "ssh_host_ed25519_key"


def host_key(data_dir: Path) -> bytes:
    """The host key, made once: written privately beside its place and linked into it, so processes starting
    together agree on one key (as ``bootstrap.signing_key`` does)."""
    path = data_dir / HOST_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{HOST_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, new_host_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


async def open_embedded_ssh(
    settings: Settings,
    meta: Metadata,
    key: bytes,
    resources: AsyncExitStack,
    metrics: Metrics,
    transfer: Transfer | None = None,
) -> None:
    """Start listening on ``settings.ssh_listen``; closed with ``resources``."""
    assert settings.ssh_listen is not None
    keys = SqlSshKeys(meta.db)
    services = ShellServices(
        keys=keys,
        repos=meta.repos,
        signer=SshAuthSigner(key, settings.ssh_token_ttl),
        base_url=settings.public_url or f"http://{settings.listen}",
        clock=time.time,
        git=GitSession(BareRepositories(settings.effective_git_root), hook_environment(settings)),
        transfer=transfer if settings.ssh_transfer else None,
    )
    embedded = EmbeddedSsh(services, keys, settings.ssh_user, metrics)
    private_key = await in_thread(host_key, settings.data_dir)
    acceptor = await start_embedded_ssh(
        embedded, host_of(settings.ssh_listen), port_of(settings.ssh_listen), private_key
    )

    async def close() -> None:
        acceptor.close()
        await acceptor.wait_closed()

    resources.push_async_callback(close)
