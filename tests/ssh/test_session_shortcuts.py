"""What a session remembers to save database round trips, and the guarantees it keeps while doing so."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from sqlalchemy import delete

from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.db.tables import repo_objects
from lfsd.resources import open_metadata
from lfsd.ssh.transfer import serve
from tests.ssh.wire import DELIM, FLUSH, Collected, Running, Site, data, pkt, site

VERSION = pkt("version 1", FLUSH)
QUIT = pkt("quit", FLUSH)
OK = ["status 200", FLUSH]
BODY = b"\xffan object a session remembers\n" * 50  # not UTF-8: its data packets parse as bytes
OID = hashlib.sha256(BODY).hexdigest()


def put(oid: str, size: int, body: bytes) -> bytes:
    return pkt(f"put-object {oid}", f"size={size}", DELIM) + data(body, 1000) + pkt(FLUSH)


def verify(oid: str, size: int) -> bytes:
    return pkt(f"verify-object {oid}", f"size={size}", FLUSH)


def download_batch(*objects: tuple[str, int]) -> bytes:
    return pkt("batch", "hash-algo=sha256", DELIM, *(f"{oid} {size}" for oid, size in objects), FLUSH)


async def _stored(s: Site) -> None:
    upload = pkt("batch", "hash-algo=sha256", DELIM, f"{OID} {len(BODY)}", FLUSH) + put(OID, len(BODY), BODY)
    packets = await s.run("alice", "acme/game", Operation.UPLOAD, VERSION + upload + QUIT)
    assert packets[-4:] == [*OK, *OK]


async def _unlink(s: Site, repo: str, oid: str) -> None:
    """Take ``oid`` out of ``repo``'s index behind the sessions' backs (what only a repository delete could do)."""
    meta = await open_metadata(s.settings)
    try:
        found = await meta.repos.find(RepoPath.parse(repo))
        assert found is not None
        async with meta.db.transaction() as conn:
            await conn.execute(
                delete(repo_objects).where(repo_objects.c.repo_id == found.id, repo_objects.c.oid == oid)
            )
    finally:
        await meta.close()


async def test_a_put_object_is_verified_without_the_index_but_with_its_size(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        raw = VERSION + pkt("batch", DELIM, f"{OID} {len(BODY)}", FLUSH) + put(OID, len(BODY), BODY)
        session = _start(s, "alice", Operation.UPLOAD)
        session.send(raw)
        # The index loses the object after the put: the session's own put-object vouches for it in verify-object.
        assert isinstance(session.out, _Answers)
        await session.out.answered(3)
        await _unlink(s, "acme/game", OID)
        session.send(verify(OID, len(BODY)) + verify(OID, len(BODY) + 1) + QUIT)
        packets = await session.finish()
        assert packets[-8:] == [*OK, "status 404", DELIM, "object does not exist", FLUSH, *OK]


class _Answers(Collected):
    """The session's output, and an event per number of answers (each ends in a flush, as the advertisement does)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[int, asyncio.Event] = {}

    def write(self, chunk: bytes) -> None:
        super().write(chunk)
        answered = self.packets.count(FLUSH) - 1
        for count, event in self.waiting.items():
            if answered >= count:
                event.set()

    async def answered(self, commands: int) -> None:
        event = self.waiting.setdefault(commands, asyncio.Event())
        async with asyncio.timeout(30):
            await event.wait()


def _start(s: Site, user: str, operation: Operation) -> Running:
    reader = asyncio.StreamReader()
    out = _Answers()
    task = asyncio.create_task(serve(s.core, s.identities[user], RepoPath.parse("acme/game"), operation, reader, out))
    return Running(reader, out, task)


async def test_a_download_batch_vouches_for_its_objects_and_only_for_them(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        await _stored(s)
        session = _start(s, "rita", Operation.DOWNLOAD)
        session.send(VERSION + download_batch((OID, len(BODY))))
        assert isinstance(session.out, _Answers)
        await session.out.answered(2)
        await _unlink(s, "acme/game", OID)
        session.send(pkt(f"get-object {OID}", FLUSH) + QUIT)
        packets = await session.finish()
        get = packets[packets.index("status 200", 6) :]
        assert get[:3] == ["status 200", f"size={len(BODY)}", DELIM]
        assert b"".join(p for p in get[3:-3] if isinstance(p, bytes)) == BODY
        # A new session (no batch) asks the index, which no longer has it.
        packets = await s.run("rita", "acme/game", Operation.DOWNLOAD, VERSION + pkt(f"get-object {OID}", FLUSH))
        assert packets[5:9] == ["status 404", DELIM, "object does not exist", FLUSH]


async def test_a_remembered_object_is_still_asked_of_the_store(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        await _stored(s)
        (stored,) = s.stored_files()
        stored.unlink()
        raw = VERSION + download_batch((OID, len(BODY))) + pkt(f"get-object {OID}", FLUSH) + QUIT
        packets = await s.run("rita", "acme/game", Operation.DOWNLOAD, raw)
        assert packets[-6:-2][:2] == ["status 404", DELIM]
        assert "missing from the server's storage" in str(packets[-4])


async def test_a_reader_cannot_verify_what_the_batch_let_it_download(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        await _stored(s)
        raw = VERSION + download_batch((OID, len(BODY))) + verify(OID, len(BODY)) + QUIT
        packets = await s.run("rita", "acme/game", Operation.DOWNLOAD, raw)
        assert packets[-6:-2][:2] == ["status 403", DELIM]
