"""One git-lfs-transfer session in process, over a socket pair: the server's cost per command, without the client.

The client side here writes the commands as git-lfs does on one connection (``put-object`` then ``verify-object`` per
object, or ``get-object`` per object, each waiting for its answer) and reads the answers; the server side is
``lfsd.ssh.transfer.serve`` on the same event loop, with the settings' defaults (SQLite and local storage in a temp
data directory, or ``--database-url``). Prints milliseconds per command and MB/s; ``--profile`` adds cProfile's top
functions. Nothing here asserts.

    python bench/ssh_session.py                          # 300 x 100 KiB, then 1 x 256 MiB
    python bench/ssh_session.py --objects 1000 --big-mib 1024 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lfsd.config import Settings  # noqa: E402
from lfsd.core.auth import Identity  # noqa: E402
from lfsd.core.operation import Operation  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402
from lfsd.ssh.transfer import TransferCore, serve  # noqa: E402
from lfsd.ssh_composition import open_transfer_core  # noqa: E402

MAX_DATA = 65516


def text(*lines: str) -> bytes:
    out = bytearray()
    for line in lines:
        if line in ("0000", "0001"):
            out += line.encode()
        else:
            payload = line.encode() + b"\n"
            out += b"%04x" % (len(payload) + 4) + payload
    return bytes(out)


def data_packets(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), MAX_DATA):
        part = body[start : start + MAX_DATA]
        yield b"%04x" % (len(part) + 4) + part


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def answer(self) -> tuple[list[bytes], int]:
        """Packets up to the flush (data packets' bytes are counted, not kept)."""
        lines: list[bytes] = []
        data = 0
        delimited = False
        while True:
            length = int(await self.reader.readexactly(4), 16)
            if length == 0:
                return lines, data
            if length == 1:
                delimited = True
                continue
            payload = await self.reader.readexactly(length - 4)
            if delimited and not payload.startswith(b"status") and lines and lines[0] == b"status 200\n":
                data += len(payload)
            else:
                lines.append(payload)

    async def call(self, raw: bytes) -> list[bytes]:
        self.writer.write(raw)
        await self.writer.drain()
        lines, _ = await self.answer()
        if not lines or lines[0] != b"status 200\n":
            raise RuntimeError(f"unexpected answer {lines!r}")
        return lines

    async def put(self, oid: str, body: bytes) -> None:
        self.writer.write(text(f"put-object {oid}", f"size={len(body)}", "0001"))
        for packet in data_packets(body):
            self.writer.write(packet)
            await self.writer.drain()
        self.writer.write(b"0000")
        await self.call(b"")

    async def get(self, oid: str, size: int) -> int:
        self.writer.write(text(f"get-object {oid}", f"size={size}", "0000"))
        await self.writer.drain()
        lines, data = await self.answer()
        if lines[:1] != [b"status 200\n"]:
            raise RuntimeError(f"unexpected answer {lines!r}")
        return data


async def session(core: TransferCore, identity: Identity, operation: Operation) -> tuple[Client, asyncio.Task[None]]:
    server_sock, client_sock = socket.socketpair()
    server_reader, server_writer = await asyncio.open_connection(sock=server_sock, limit=2**20)
    client_reader, client_writer = await asyncio.open_connection(sock=client_sock, limit=2**20)
    task = asyncio.create_task(
        serve(core, identity, RepoPath.parse("bench/session"), operation, server_reader, server_writer)
    )
    client = Client(client_reader, client_writer)
    await client.answer()  # the capabilities
    await client.call(text("version 1", "0000"))
    return client, task


async def end(client: Client, task: asyncio.Task[None]) -> None:
    await client.call(text("quit", "0000"))
    client.writer.close()
    await task


async def run_case(core: TransferCore, identity: Identity, bodies: list[bytes], label: str) -> None:
    oids = [hashlib.sha256(body).hexdigest() for body in bodies]
    total = sum(len(body) for body in bodies)
    client, task = await session(core, identity, Operation.UPLOAD)
    wanted = [f"{oid} {len(body)}" for oid, body in zip(oids, bodies, strict=True)]
    batch = text("batch", "hash-algo=sha256", "0001", *wanted, "0000")
    await client.call(batch)
    put_seconds = verify_seconds = 0.0
    for oid, body in zip(oids, bodies, strict=True):
        t0 = time.perf_counter()
        await client.put(oid, body)
        t1 = time.perf_counter()
        await client.call(text(f"verify-object {oid}", f"size={len(body)}", "0000"))
        put_seconds += t1 - t0
        verify_seconds += time.perf_counter() - t1
    await end(client, task)
    client, task = await session(core, identity, Operation.DOWNLOAD)
    await client.call(batch)  # as git-lfs does before its get-object commands
    t0 = time.perf_counter()
    got = 0
    for oid, body in zip(oids, bodies, strict=True):
        got += await client.get(oid, len(body))
    get_seconds = time.perf_counter() - t0
    await end(client, task)
    if got != total:
        raise RuntimeError(f"got {got} of {total} bytes")
    n = len(bodies)
    print(
        f"{label:<16} put {put_seconds / n * 1000:8.2f} ms ({total / put_seconds / 1e6:7.1f} MB/s)"
        f"  verify {verify_seconds / n * 1000:6.2f} ms"
        f"  get {get_seconds / n * 1000:8.2f} ms ({total / get_seconds / 1e6:7.1f} MB/s)"
    )


async def main_async(options: argparse.Namespace, tmp: Path) -> None:
    settings = Settings(data_dir=tmp / "data", database_url=options.database_url)
    meta = await open_metadata(settings, migrate=True)
    try:
        user = await meta.users.add("bench", is_admin=False, password=None)
        repo = await meta.repos.create(RepoPath.parse("bench/session"), is_public=False)
        from lfsd.core.auth import Permission

        await meta.repos.set_grant(repo, user.id, Permission.WRITE)
    finally:
        await meta.close()
    identity = Identity(user_id=user.id, name="bench", is_admin=False)
    async with open_transfer_core(settings) as core:
        profile = cProfile.Profile() if options.profile else None
        if profile is not None:
            profile.enable()
        if options.objects:
            bodies = [os.urandom(options.object_kib * 1024) for _ in range(options.objects)]
            await run_case(core, identity, bodies, f"{options.objects} x {options.object_kib} KiB")
        if options.big_mib:
            await run_case(core, identity, [os.urandom(options.big_mib * 2**20)], f"1 x {options.big_mib} MiB")
        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats(options.sort).print_stats(options.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--object-kib", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=256, help="0: no large object")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in the temp data directory)")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's top N functions")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-ssh-session-") as name:
        asyncio.run(main_async(options, Path(name)))


if __name__ == "__main__":
    main()
