"""Driving a git-lfs-transfer session in process: bytes in through a StreamReader, packets out of a buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Unpack

from lfsd.config import Settings, SettingsArgs
from lfsd.core.auth import Identity, Permission
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.observability.metrics import Metrics
from lfsd.resources import open_metadata
from lfsd.ssh.pktline import encode_data, encode_text
from lfsd.ssh.transfer import TransferCore, serve
from lfsd.ssh_composition import open_transfer_core

FLUSH = "0000"
DELIM = "0001"


def pkt(*lines: str) -> bytes:
    """Text packets; ``FLUSH`` and ``DELIM`` stand for themselves."""
    return b"".join(line.encode() if line in (FLUSH, DELIM) else encode_text(line) for line in lines)


def data(body: bytes, chunk: int = 65516) -> bytes:
    return b"".join(encode_data(body[i : i + chunk]) for i in range(0, len(body), chunk))


def parse(raw: bytes) -> list[str | bytes]:
    """Packets as text lines (``FLUSH``/``DELIM`` markers included); data packets that are not UTF-8 stay bytes."""
    out: list[str | bytes] = []
    i = 0
    while i < len(raw):
        length = int(raw[i : i + 4], 16)
        if length in (0, 1):
            out.append(FLUSH if length == 0 else DELIM)
            i += 4
            continue
        payload = raw[i + 4 : i + length]
        try:
            out.append(payload.decode().removesuffix("\n"))
        except UnicodeDecodeError:
            out.append(payload)
        i += length
    return out


class Collected:
    def __init__(self) -> None:
        self.raw = bytearray()

    def write(self, chunk: bytes) -> None:
        self.raw += chunk

    async def drain(self) -> None:
        await asyncio.sleep(0)

    @property
    def packets(self) -> list[str | bytes]:
        return parse(bytes(self.raw))


@dataclass
class Running:
    reader: asyncio.StreamReader
    out: Collected
    task: asyncio.Task[None]

    def send(self, raw: bytes) -> None:
        self.reader.feed_data(raw)

    async def finish(self, *, close: bool = True) -> list[str | bytes]:
        if close:
            self.reader.feed_eof()
        await asyncio.wait_for(self.task, 30)
        return self.out.packets


@dataclass
class Site:
    settings: Settings
    core: TransferCore
    identities: dict[str, Identity] = field(default_factory=dict)

    def start(self, user: str, repo: str, operation: Operation) -> Running:
        reader = asyncio.StreamReader()
        out = Collected()
        task = asyncio.create_task(
            serve(self.core, self.identities[user], RepoPath.parse(repo), operation, reader, out)
        )
        return Running(reader, out, task)

    async def run(self, user: str, repo: str, operation: Operation, raw: bytes) -> list[str | bytes]:
        session = self.start(user, repo, operation)
        session.send(raw)
        return await session.finish()

    def stored_files(self) -> list[Path]:
        roots = [self.settings.local_storage_root / "objects", self.settings.local_storage_root / "tmp"]
        return [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]


@asynccontextmanager
async def site(tmp: Path, *, metrics: Metrics | None = None, **overrides: Unpack[SettingsArgs]) -> AsyncIterator[Site]:
    """SQLite and local storage; users ``alice`` (write), ``rita`` (read), ``olga`` (none) on ``acme/game``, and the
    server admin ``root``."""
    options: SettingsArgs = {"data_dir": tmp / "data", "fsync": False, "buffer_size": 64 * 1024, **overrides}
    settings = Settings(**options)
    meta = await open_metadata(settings, migrate=True)
    identities: dict[str, Identity] = {}
    try:
        repo = await meta.repos.create(RepoPath.parse("acme/game"), is_public=False)
        for name, level in (("alice", Permission.WRITE), ("rita", Permission.READ), ("olga", None)):
            user = await meta.users.add(name, is_admin=False, password=None)
            identities[name] = Identity(user_id=user.id, name=name, is_admin=False)
            if level is not None:
                await meta.repos.set_grant(repo, user.id, level)
        root = await meta.users.add("root", is_admin=True, password=None)
        identities["root"] = Identity(user_id=root.id, name="root", is_admin=True)
    finally:
        await meta.close()
    async with open_transfer_core(settings, metrics=metrics) as core:
        yield Site(settings, core, identities)
