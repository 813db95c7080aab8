"""The git-lfs-transfer protocol: one SSH session of batch, object and lock commands over pkt-lines.

The protocol is git-lfs's ``docs/proposals/ssh_adapter.md`` as the real client (``ssh/``, ``tq/ssh.go``,
``locking/ssh.go``) speaks it. Every command ends in a flush packet; every answer is ``status NNN``, arguments, and
(after a delimiter) lines or data, then a flush. A command the core refuses is answered with the error's status and
message and the session goes on; a broken framing, a stream cut mid-command, a stalled command or a body that does not
end where it says ends the session (logged), since the two sides no longer agree where a packet starts.

Two timeouts: ``idle_timeout`` between commands (long: the client keeps connections open and idle between batches,
which is what made Gitea's sessions hang up), and ``stall_timeout`` while a command's packets or an object's bytes
are moving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lfsd.core.access import AccessControl
from lfsd.core.auth import Identity, Permission, Repo, require
from lfsd.core.errors import BadRequest, LfsError, NotFound, PayloadTooLarge
from lfsd.core.lock_service import LockService
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.service import LfsService
from lfsd.core.transfer_slots import Slot, TransferSlots, user_key
from lfsd.ssh.pktline import (
    DELIM,
    ConnectionLost,
    EndOfStream,
    Marker,
    PacketReader,
    PacketWriter,
    ProtocolError,
    Reader,
    Writer,
    text_of,
)

if TYPE_CHECKING:
    # Only the type: prometheus_client is ~25 ms of a shell's start-up, and a shell process exports no metrics.
    from lfsd.observability.metrics import Metrics

log = logging.getLogger("lfsd.ssh")

CAPABILITIES = ("version=1", "locking")
MAX_ARGUMENTS = 64  # a command's key=value packets; the client sends at most a handful
MAX_HELD = 10_000  # objects a session remembers as held by its repository (a few hundred bytes each)


@dataclass(frozen=True)
class TransferCore:
    """What a transfer session needs from the server: the use cases and its limits (``ssh_composition`` builds it)."""

    service: LfsService
    locks: LockService
    access: AccessControl
    idle_timeout: float
    stall_timeout: float
    max_object_size: int
    batch_max_objects: int
    metrics: Metrics | None = None
    # The per-user cap on transfers at once (put-object and get-object hold a slot while their bytes move): the HTTP
    # server's own slots when sessions run in its process, so both front ends count against one cap.
    slots: TransferSlots = field(default_factory=TransferSlots)
    max_transfers_per_user: int = 64
    transfer_queue_wait: float = 5.0

    async def admit(self, identity: Identity) -> Slot:
        return await self.slots.admit_waiting(
            user_key(identity.user_id), self.max_transfers_per_user, self.transfer_queue_wait
        )


class Abort(Exception):
    """End the session at once, answering nothing more (an object's bytes are already on their way)."""


class EndSession(Exception):
    """Answer this error, then end the session: the stream is no longer in step with the commands."""

    def __init__(self, error: LfsError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class Session:
    core: TransferCore
    identity: Identity
    path: RepoPath
    operation: Operation
    packets: PacketReader
    out: PacketWriter
    found: Repo | None = None
    permission: Permission = Permission.NONE
    refusal: LfsError | None = None  # why the caller may not read the repository (or it does not exist)
    versioned: bool = False
    status: int = 0  # of the command being answered, for its log line
    notes: dict[str, object] = field(default_factory=dict)
    # Objects this session saw in its repository's index (a download batch answered them, or its own put-object
    # linked them) and their sizes: a later get-object or verify-object of one skips the index, as a signed HTTP link
    # does (``LfsService.download(linked=True)``), since nothing takes an object out of a repository without taking
    # the repository or the body away too; the store is still asked. Bounded: past ``MAX_HELD`` the index is asked.
    held: dict[Oid, int] = field(default_factory=dict)

    def remember(self, oid: Oid, size: int) -> None:
        if len(self.held) < MAX_HELD:
            self.held[oid] = size

    @property
    def repo(self) -> Repo:
        if self.found is None:
            raise self.refusal or NotFound("repository not found")
        return self.found

    def require(self, needed: Permission) -> Repo:
        """The repository, if the session's user holds ``needed`` on it; else the error the HTTP API would give."""
        repo = self.repo
        require(self.identity, self.permission, needed)
        return repo

    async def create_for_upload(self) -> None:
        """A server admin's first upload creates a missing repository, as over HTTP."""
        if self.found is None and self.identity.is_admin:
            self.found = await self.core.access.authorize(self.identity, self.path, Permission.WRITE, create=True)
            self.permission = await self.core.access.permission(self.identity, self.found)

    async def read(self) -> bytes | Marker:
        try:
            return await self.packets.read(self.core.stall_timeout)
        except EndOfStream:
            raise ConnectionLost("the connection closed inside a command") from None

    async def section(self, limit: int = MAX_ARGUMENTS) -> tuple[list[str], Marker]:
        """Text packets up to the next delimiter or flush, and which one ended them."""
        lines: list[str] = []
        while not isinstance(packet := await self.read(), Marker):
            if len(lines) >= limit:
                raise EndSession(PayloadTooLarge(f"more than {limit} lines in one command"))
            lines.append(text_of(packet))
        return lines, packet

    async def skip(self) -> None:
        """Read past a command up to its flush (arguments, then lines after a delimiter)."""
        _, end = await self.section()
        while end is DELIM:
            _, end = await self.section()

    async def arguments(self) -> dict[str, str]:
        """A command's arguments up to its flush (a delimiter and lines after it, which no such command has, are
        refused)."""
        lines, end = await self.section()
        if end is DELIM:
            raise ProtocolError("unexpected delimiter in a command without data")
        return parse_arguments(lines)

    def reply(self, status: int, args: list[str] | None = None, lines: list[str] | None = None) -> None:
        self.status = status
        self.out.text(f"status {status:03d}")
        for arg in args or ():
            self.out.text(arg)
        if lines is not None:
            self.out.delim()
            for line in lines:
                self.out.text(line)
        self.out.flush()

    def error(self, exc: LfsError, args: list[str] | None = None) -> None:
        self.reply(exc.status, args, [one_line(exc.message)])

    async def send(self) -> None:
        await self.out.send(self.core.stall_timeout)


def one_line(text: str) -> str:
    return " ".join(text.split())[:1000]


def parse_arguments(lines: list[str]) -> dict[str, str]:
    """``key=value`` packets (a bare ``key`` is ``key=``); unknown keys are kept and ignored by the commands."""
    args: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition("=")
        if not key:
            raise ProtocolError(f"invalid argument {line[:100]!r}")
        args[key] = value
    return args


Command = Callable[[Session, str], Awaitable[None]]


def _commands() -> dict[str, Command]:
    # Imported here: the command modules import this one for Session.
    from lfsd.ssh.locking import list_locks, lock, unlock
    from lfsd.ssh.objects import batch, get_object, put_object, verify_object

    return {
        "batch": batch,
        "put-object": put_object,
        "get-object": get_object,
        "verify-object": verify_object,
        "lock": lock,
        "list-lock": list_locks,
        "list-locks": list_locks,  # what git-lfs 3.x sends when it verifies locks before a push
        "unlock": unlock,
    }


async def serve(
    core: TransferCore, identity: Identity, repo: RepoPath, operation: Operation, reader: Reader, writer: Writer
) -> None:
    """Serve one git-lfs-transfer session on ``reader``/``writer`` until ``quit``, the end of the stream, a protocol
    error or a timeout. Never raises for what the peer does: errors are answered on the channel and logged.

    Permissions are checked per command (git-lfs runs ``git lfs locks`` on an ``upload`` session, and a reader may list
    locks): a caller who cannot read the repository gets its refusal (404, as over HTTP) for every command, in the
    protocol, because git-lfs 3.3 shows nothing of a session that fails to start and falls back to
    ``git-lfs-authenticate``.
    """
    session = Session(core, identity, repo, operation, PacketReader(reader), PacketWriter(writer))
    started = time.monotonic()
    metrics = core.metrics
    if metrics is not None:
        metrics.ssh_transfer_sessions.labels(operation.value).inc()
        metrics.ssh_transfer_sessions_active.labels(operation.value).inc()
    try:
        reason = await _run(session, _commands())
    finally:
        if metrics is not None:
            metrics.ssh_transfer_sessions_active.labels(operation.value).dec()
    extra = _context(session) | {
        "event": "ssh_session_end",
        "reason": reason,
        "bytes_in": session.packets.received,
        "bytes_out": session.out.sent,
        "duration_s": round(time.monotonic() - started, 6),
    }
    log.info("ssh session ended: %s", reason, extra=extra)


async def _run(session: Session, commands: dict[str, Command]) -> str:
    """The command loop; returns why the session ended."""
    for capability in CAPABILITIES:
        session.out.text(capability)
    session.out.flush()
    try:
        # Advertised before the repository is looked up: the client reads it and sends ``version 1`` meanwhile.
        await session.send()
        await _authorize(session)
        while True:
            try:
                packet = await session.packets.read(session.core.idle_timeout)
            except EndOfStream:
                return "closed"
            except TimeoutError:
                return f"idle for {session.core.idle_timeout:g} seconds"
            line = text_of(packet)
            name, _, operand = line.partition(" ")
            if name == "quit":
                await session.arguments()
                session.reply(200)
                await session.send()
                _command_done(session, "quit", time.monotonic(), 0, 0)
                return "quit"
            ended = await _command(session, commands, name, operand)
            if ended is not None:
                return ended
    except ProtocolError as exc:
        log.warning("ssh protocol error: %s", exc, extra=_context(session) | {"event": "ssh_protocol_error"})
        await _last_words(session, 400, str(exc))
        return f"protocol error: {exc}"
    except TimeoutError:
        return f"stalled for {session.core.stall_timeout:g} seconds"
    except (ConnectionError, OSError) as exc:
        return f"connection lost: {exc}"


async def _authorize(session: Session) -> None:
    try:
        session.found = await session.core.access.authorize(session.identity, session.path, Permission.READ)
        session.permission = await session.core.access.permission(session.identity, session.found)
    except LfsError as exc:
        session.refusal = exc


async def _command(session: Session, commands: dict[str, Command], name: str, operand: str) -> str | None:
    """Run one command and answer it; a reason when the session must end after it."""
    started = time.monotonic()
    received, sent = session.packets.received, session.out.sent
    label = name if name in commands or name == "version" else "unknown"
    session.status = 0
    session.notes = {}
    ended: str | None = None
    try:
        try:
            if name == "version":
                await _version(session, operand)
            elif not session.versioned:
                raise EndSession(BadRequest("the first command must be 'version 1'"))
            elif name in commands:
                await commands[name](session, operand)
            else:
                await session.skip()
                session.error(BadRequest(f"unknown command {name[:40]!r}"))
        except LfsError as exc:
            session.error(exc)
        except EndSession as exc:
            session.error(exc.error)
            ended = f"{exc.error.status}: {exc.error.message}"
        await session.send()
    except Abort as exc:
        log.warning("ssh session cut: %s", exc, extra=_context(session) | {"event": "ssh_abort"})
        session.status = 500
        _command_done(session, label, started, received, sent)
        return str(exc)
    except ProtocolError as exc:
        session.status = 400
        _command_done(session, label, started, received, sent)
        raise exc
    except TimeoutError:
        session.status = 408
        _command_done(session, label, started, received, sent)
        raise
    except (ConnectionError, OSError):
        session.status = 499  # the client went away: nothing to answer
        _command_done(session, label, started, received, sent)
        raise
    except Exception:
        log.exception("ssh command %s failed", label, extra=_context(session) | {"event": "ssh_command_error"})
        session.status = 500
        _command_done(session, label, started, received, sent)
        await _last_words(session, 500, "internal server error")
        return "internal error"
    _command_done(session, label, started, received, sent)
    return ended


async def _version(session: Session, operand: str) -> None:
    await session.arguments()
    if operand != "1":
        raise BadRequest(f"unsupported version {operand[:20]!r}: this server speaks version 1")
    session.versioned = True
    session.reply(200)


async def _last_words(session: Session, status: int, message: str) -> None:
    """A final error answer before the session ends, if the peer is still there to read it."""
    try:
        session.out.text(f"status {status:03d}")
        session.out.delim()
        session.out.text(one_line(message))
        session.out.flush()
        await session.send()
    except (ConnectionError, OSError, TimeoutError, ValueError):
        pass


def _context(session: Session) -> dict[str, object]:
    return {
        "user": session.identity.name,
        "repo": str(session.path),
        "operation": session.operation.value,
    }


def _command_done(session: Session, command: str, started: float, received: int, sent: int) -> None:
    bytes_in = session.packets.received - received
    bytes_out = session.out.sent - sent
    status = session.status or 500
    metrics = session.core.metrics
    if metrics is not None:
        metrics.ssh_commands.labels(command, str(status)).inc()
        metrics.ssh_received_bytes.inc(bytes_in)
        metrics.ssh_sent_bytes.inc(bytes_out)
    extra = _context(session) | {
        "event": "ssh_command",
        "command": command,
        "status": status,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "duration_s": round(time.monotonic() - started, 6),
        **session.notes,
    }
    log.info("ssh %s %s", command, status, extra=extra)
