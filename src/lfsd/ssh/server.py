"""The embedded SSH server (``LFSD_SSH_LISTEN``), for containers and small installs without OpenSSH.

The login name is ``ssh_user`` (``git``); public keys are checked against the keys table (a known key of an enabled
user), and each exec request runs the same dispatch as OpenSSH's forced command (``ssh.shell.serve_command``),
with the channel as the command's streams. Nothing else is offered: no shell, no PTY, no forwarding, no SFTP.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Protocol

import asyncssh

from lfsd.core.sshkeys import PublicKey, parse_offered_key
from lfsd.observability.metrics import Metrics
from lfsd.ssh.shell import Refused, ShellServices, serve_command

log = logging.getLogger("lfsd.ssh")

KEY_ID = "lfsd_key_id"
_PROGRAMS = ("git-lfs-authenticate", "git-lfs-transfer", "git-upload-pack", "git-receive-pack")


class KeyLookup(Protocol):
    async def login_key(self, key: PublicKey) -> int | None:
        """The id of ``key`` when it is registered to an enabled user, else None."""


@dataclass(frozen=True)
class EmbeddedSsh:
    services: ShellServices
    keys: KeyLookup
    user: str
    metrics: Metrics


class _Streams:
    """``core.ssh_command.SessionStreams`` over an asyncssh process (binary channel)."""

    def __init__(self, process: asyncssh.SSHServerProcess[bytes], metrics: Metrics) -> None:
        self._process = process
        self._received = metrics.ssh_channel_bytes.labels("received")
        self._sent = metrics.ssh_channel_bytes.labels("sent")

    async def read(self, size: int) -> bytes:
        data = await self._process.stdin.read(size)
        self._received.inc(len(data))
        return data

    def write(self, data: bytes) -> None:
        self._sent.inc(len(data))
        self._process.stdout.write(data)

    def write_stderr(self, data: bytes) -> None:
        self._process.stderr.write(data)

    async def drain(self) -> None:
        await self._process.stdout.drain()


class _Server(asyncssh.SSHServer):
    def __init__(self, embedded: EmbeddedSsh) -> None:
        self._embedded = embedded
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        return True  # every login authenticates (with a key)

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if username != self._embedded.user or self._conn is None:
            return False
        algorithm = key.get_algorithm()
        offered = parse_offered_key(algorithm, base64.b64encode(key.public_data).decode("ascii"))
        if offered is None:
            return False
        key_id = await self._embedded.keys.login_key(offered)
        if key_id is None:
            return False
        self._conn.set_extra_info(**{KEY_ID: key_id})
        return True


async def _session(embedded: EmbeddedSsh, process: asyncssh.SSHServerProcess[bytes]) -> None:
    key_id = process.get_extra_info(KEY_ID)
    streams = _Streams(process, embedded.metrics)
    program = (process.command or "").split(" ", 1)[0]
    label = program if program in _PROGRAMS else "other"
    embedded.metrics.ssh_sessions.inc()
    status, outcome = 1, "failed"
    try:
        protocol = process.env.get("GIT_PROTOCOL")
        wanted = protocol if isinstance(protocol, str) else None
        status = await serve_command(embedded.services, int(key_id), process.command, wanted, streams.write, streams)
        outcome = "ok" if status == 0 else "failed"
    except Refused as exc:
        process.stderr.write(f"lfsd: {exc.message}\n".encode())
        status, outcome = exc.status, "refused"
    except (asyncssh.Error, ConnectionError) as exc:
        log.info("ssh session ended: %s", exc)
    except Exception:
        log.exception("ssh session failed")
        process.stderr.write(b"lfsd: internal error\n")
    finally:
        embedded.metrics.ssh_exec_commands.labels(label, outcome).inc()
        process.exit(status)


async def start_embedded_ssh(embedded: EmbeddedSsh, host: str, port: int, host_key: bytes) -> asyncssh.SSHAcceptor:
    """Listen on ``host:port``; ``host_key`` is the server's private key (OpenSSH format)."""

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        await _session(embedded, process)

    return await asyncssh.create_server(
        lambda: _Server(embedded),
        host,
        port,
        server_host_keys=[asyncssh.import_private_key(host_key)],
        process_factory=handle,
        encoding=None,
        allow_pty=False,
        agent_forwarding=False,
        x11_forwarding=False,
        sftp_factory=None,
        allow_scp=False,
        line_editor=False,
        reuse_port=True,
    )


def new_host_key() -> bytes:
    """A new ed25519 host key in OpenSSH's private key format."""
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key()
