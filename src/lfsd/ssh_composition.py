"""The composition root of SSH transfers: opens what a git-lfs-transfer session runs on, as the HTTP app does.

``lfsd ssh shell`` (a short-lived process per SSH connection) and the embedded SSH server both get a ``TransferCore``
from here: the same database, store, upload pipeline, signing key (lock cursors agree with the HTTP API's) and use
cases as ``app.py`` builds, from the same ``resources`` functions.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from lfsd.bootstrap import signing_key
from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.auth import Identity
from lfsd.core.lock_service import LockService
from lfsd.core.locks import CursorCodec
from lfsd.core.login import PasswordLogin
from lfsd.core.operation import Operation
from lfsd.core.ports import ObjectStore, blocking_presence
from lfsd.core.repo import RepoPath
from lfsd.core.service import LfsService
from lfsd.core.signing import LinkSigner
from lfsd.core.ssh_command import SessionStreams
from lfsd.core.throttle import LoginThrottle, ThrottleLimits
from lfsd.core.transfer_slots import TransferSlots
from lfsd.db.metadata import Metadata
from lfsd.offload import in_thread
from lfsd.resources import migrate_in_child, open_metadata, open_store
from lfsd.ssh.pipes import widen
from lfsd.ssh.pktline import Writer
from lfsd.ssh.shell import Transfer
from lfsd.ssh.transfer import TransferCore, serve
from lfsd.state.memory import LruCache, MemoryFailureCounter
from lfsd.storage.instrumented import InstrumentedStore

if TYPE_CHECKING:
    from lfsd.observability.metrics import Metrics  # only the type: see lfsd.ssh.transfer


def open_transfer_core(
    settings: Settings, *, metrics: Metrics | None = None, slots: TransferSlots | None = None
) -> AbstractAsyncContextManager[TransferCore]:
    """The use cases a transfer session calls, open until the context ends. ``metrics``: the server's, when the
    sessions run inside it (the embedded SSH server); a one-connection shell process exports none. ``slots``: the
    HTTP server's per-user transfer slots (its ``InFlight``) when sessions run in its process, so that one cap holds
    for both front ends; else the sessions of this process get their own."""
    return _open(settings, metrics, slots if slots is not None else TransferSlots())


@asynccontextmanager
async def _open(settings: Settings, metrics: Metrics | None, slots: TransferSlots) -> AsyncIterator[TransferCore]:
    meta = await open_metadata(settings, migrator=migrate_in_child(settings))
    try:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            store: ObjectStore = opened.store
            if metrics is not None:
                store = InstrumentedStore(store, opened.backend, metrics)
            key = await in_thread(signing_key, settings)
            # No direct (presigned) transfers: over SSH every byte goes through the session.
            # As in app.py: a link re-checks, under its row locks, the bodies a garbage collector may have taken.
            meta.objects.check_bodies_with(store.present, blocking_presence(store))
            service = LfsService(
                meta.objects, store, LinkSigner(key, settings.link_ttl), time.time, None, quota=meta.usage
            )
            locks = LockService(
                meta.locks,
                CursorCodec(key),
                default_limit=settings.locks_default_limit,
                max_limit=settings.locks_max_limit,
                audit=meta.audit,
            )
            yield TransferCore(
                service=service,
                locks=locks,
                access=_access(settings, meta),
                idle_timeout=settings.ssh_idle_timeout,
                stall_timeout=settings.ssh_stall_timeout,
                max_object_size=settings.max_object_size,
                batch_max_objects=settings.batch_max_objects,
                metrics=metrics,
                slots=slots,
                max_transfers_per_user=settings.max_transfers_per_user,
                transfer_queue_wait=settings.transfer_queue_wait,
            )
    finally:
        await meta.close()


def _access(settings: Settings, meta: Metadata) -> AccessControl:
    """Access control for sessions whose user SSH authenticated: no password is ever checked here, so the login
    throttle's counters stay in process (never Redis)."""
    limits = ThrottleLimits(
        window_seconds=settings.login_failure_window,
        per_user_address=settings.login_failures_per_user_address,
        per_address=settings.login_failures_per_address,
        per_user=settings.login_failures_per_user,
        trusted_seconds=settings.login_trusted_address_ttl,
    )
    logins = PasswordLogin(
        meta.users,
        meta.passwords,
        LoginThrottle(MemoryFailureCounter(), limits),
        LruCache(settings.credential_cache_size, settings.credential_cache_ttl),
        secrets.token_bytes(32),
    )
    return AccessControl(meta.users, meta.repos, logins, LruCache(10_000, settings.link_standing_ttl))


def shell_transfer(settings: Settings) -> Transfer:
    """git-lfs-transfer in OpenSSH's forced command: one session on this process's standard input and output,
    over a core opened for it (the process serves one connection)."""

    async def run(identity: Identity, repo: RepoPath, operation: Operation, streams: SessionStreams | None) -> int:
        reader, writer = await _standard_streams()
        async with open_transfer_core(settings) as core:
            await serve(core, identity, repo, operation, reader, writer)
            await writer.drain()
        return 0

    return run


def channel_transfer(core: TransferCore) -> Transfer:
    """git-lfs-transfer in the embedded server: sessions on SSH channels, over the server's own core."""

    async def run(identity: Identity, repo: RepoPath, operation: Operation, streams: SessionStreams | None) -> int:
        assert streams is not None, "the embedded server always passes its channel"
        await serve(core, identity, repo, operation, _ChannelReader(streams), streams)
        await streams.drain()
        return 0

    return run


class _ChannelReader:
    """``readexactly`` over a channel's ``read``, with ``asyncio.StreamReader``'s end-of-stream error."""

    def __init__(self, streams: SessionStreams) -> None:
        self._streams = streams
        self._pending = b""

    async def readexactly(self, n: int) -> bytes:
        while len(self._pending) < n:
            chunk = await self._streams.read(max(n - len(self._pending), 64 * 1024))
            if not chunk:
                partial, self._pending = self._pending, b""
                raise asyncio.IncompleteReadError(partial, n)
            self._pending += chunk
        data, self._pending = self._pending[:n], self._pending[n:]
        return data


async def _standard_streams() -> tuple[asyncio.StreamReader, Writer]:
    """This process's standard input and output as streams: the event loop's pipe transports for pipes and sockets
    (what sshd gives), blocking reads and writes on a thread for anything epoll refuses (a file, /dev/null)."""
    for fd in (0, 1):
        widen(fd)  # sshd's pipes hold one data packet by default (see lfsd.ssh.pipes)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    if _pollable(0):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    else:
        loop.run_in_executor(None, _feed_blocking, loop, reader)
    if not _pollable(1):
        return reader, _BlockingWriter()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", buffering=0)
    )
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


def _pollable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _feed_blocking(loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader) -> None:
    while chunk := os.read(0, 1 << 20):
        loop.call_soon_threadsafe(reader.feed_data, chunk)
    loop.call_soon_threadsafe(reader.feed_eof)


class _BlockingWriter:
    """Standard output that is a file: written at once (a file never blocks for long)."""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    async def drain(self) -> None:
        return None
