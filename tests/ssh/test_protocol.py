"""git-lfs-transfer fed byte by byte: the commands, their errors, bad input on the channel, and the timeouts."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.observability.metrics import Metrics
from lfsd.ssh.transfer import serve
from tests.ssh.wire import DELIM, FLUSH, Site, data, pkt, site

HELLO = ["version=1", "locking", FLUSH]
OK = ["status 200", FLUSH]
VERSION = pkt("version 1", FLUSH)
QUIT = pkt("quit", FLUSH)
BODY = b"\xffthe body of an object\n" * 100  # not UTF-8: data packets parse as bytes
OID = hashlib.sha256(BODY).hexdigest()


def put(oid: str, size: int, body: bytes) -> bytes:
    return pkt(f"put-object {oid}", f"size={size}", DELIM) + data(body, 1000) + pkt(FLUSH)


def upload_batch(oid: str = OID, size: int = len(BODY)) -> bytes:
    return pkt("batch", "transfer=ssh", "hash-algo=sha256", "refname=refs/heads/main", DELIM, f"{oid} {size}", FLUSH)


async def _upload(s: Site) -> None:
    raw = VERSION + upload_batch() + put(OID, len(BODY), BODY) + pkt(f"verify-object {OID}", f"size={len(BODY)}", FLUSH)
    packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw + QUIT)
    assert packets == [
        *HELLO,
        *OK,
        "status 200",
        "hash-algo=sha256",
        DELIM,
        f"{OID} {len(BODY)} upload",
        FLUSH,
        *OK,
        *OK,
        *OK,
    ]


async def test_upload_then_download(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        await _upload(s)
        again = await s.run("alice", "acme/game", Operation.UPLOAD, VERSION + upload_batch() + QUIT)
        assert f"{OID} {len(BODY)} noop" in again
        raw = VERSION + pkt("batch", DELIM, f"{OID} {len(BODY)}", f"{'0' * 64} 5", FLUSH)
        raw += pkt(f"get-object {OID}", f"size={len(BODY)}", FLUSH)
        packets = await s.run("rita", "acme/game", Operation.DOWNLOAD, raw + QUIT)
        assert packets[: len(HELLO) + 2] == [*HELLO, *OK]
        batch_end = packets.index(FLUSH, 7)
        assert packets[5:batch_end] == [
            "status 200",
            "hash-algo=sha256",
            DELIM,
            f"{OID} {len(BODY)} download",
            f"{'0' * 64} 5 noop",
        ]
        get = packets[batch_end + 1 :]
        assert get[:3] == ["status 200", f"size={len(BODY)}", DELIM]
        assert b"".join(p for p in get[3:-3] if isinstance(p, bytes)) == BODY and len(get) > 6
        assert get[-3:] == [FLUSH, *OK]


async def test_the_version_comes_first(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, upload_batch())
        assert packets[3:] == ["status 400", DELIM, "the first command must be 'version 1'", FLUSH]
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, pkt("version 2", FLUSH) + VERSION + QUIT)
        assert packets[3:7] == ["status 400", DELIM, "unsupported version '2': this server speaks version 1", FLUSH]
        assert packets[7:] == [*OK, *OK]


@pytest.mark.parametrize(
    "garbage",
    [b"zzzz", b"00g1", b"FFFF", b"0002", b"0003", b"fff1" + b"x" * 10, b"0006\xff\xfe"],
    ids=["letters", "not-hex", "uppercase", "reserved-2", "reserved-3", "oversized", "not-utf8"],
)
async def test_garbage_ends_the_session(tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async with site(tmp_path) as s:
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            packets = await s.run("alice", "acme/game", Operation.UPLOAD, VERSION + garbage + QUIT)
        assert packets[:5] == [*HELLO, *OK]
        assert packets[5:7] == ["status 400", DELIM]
        assert packets[8:] == [FLUSH]  # and no answer to the quit after the garbage
        assert any("protocol error" in record.getMessage() for record in caplog.records)


async def test_the_largest_packet_is_accepted(tmp_path: Path) -> None:
    body = bytes(range(256)) * 400
    oid = hashlib.sha256(body).hexdigest()
    async with site(tmp_path) as s:
        raw = VERSION + upload_batch(oid, len(body)) + pkt(f"put-object {oid}", f"size={len(body)}", DELIM)
        raw += data(body, 65516) + pkt(FLUSH) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[-4:] == [*OK, *OK]


async def test_fewer_bytes_than_the_size(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        raw = VERSION + upload_batch() + put(OID, len(BODY), BODY[:-5]) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        error = packets[10:14]
        assert error[:2] == ["status 422", DELIM] and "declared size" in str(error[2]), packets
        assert packets[14:] == OK  # in step: the session goes on
        assert s.stored_files() == []


async def test_more_bytes_than_the_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with site(tmp_path) as s, asyncio.timeout(30):
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            raw = VERSION + upload_batch() + put(OID, len(BODY), BODY + b"more") + QUIT
            packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[10:12] == ["status 422", DELIM]
        assert "longer than the declared size" in str(packets[12])
        assert packets[13:] == [FLUSH]  # the rest of the body is not read as commands: the session ended
        assert s.stored_files() == []
        assert any("longer than the declared size" in record.getMessage() for record in caplog.records)


async def test_a_wrong_oid(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        wrong = BODY[:-1] + b"!"
        raw = VERSION + upload_batch() + put(OID, len(BODY), wrong) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[10:14] == ["status 422", DELIM, "the uploaded content does not match the object id", FLUSH]
        assert packets[14:] == OK
        assert s.stored_files() == []
        check = VERSION + pkt(f"verify-object {OID}", f"size={len(BODY)}", FLUSH)
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, check)
        assert packets[5:] == ["status 404", DELIM, "object does not exist", FLUSH]


async def test_a_client_that_vanishes_mid_object(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with site(tmp_path) as s:
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            raw = VERSION + upload_batch() + pkt(f"put-object {OID}", f"size={len(BODY)}", DELIM)
            raw += data(BODY[:1500], 1000) + b"03e8" + BODY[1500:1600]  # cut inside the second packet
            packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[:10] == [
            *HELLO,
            *OK,
            "status 200",
            "hash-algo=sha256",
            DELIM,
            f"{OID} {len(BODY)} upload",
            FLUSH,
        ]
        assert s.stored_files() == []
        ends = [record for record in caplog.records if getattr(record, "event", "") == "ssh_session_end"]
        assert ends and "closed inside a packet" in str(getattr(ends[0], "reason", ""))


async def test_idle_between_commands_is_not_a_stall(tmp_path: Path) -> None:
    async with site(tmp_path, ssh_stall_timeout=0.2, ssh_idle_timeout=60) as s:
        session = s.start("alice", "acme/game", Operation.UPLOAD)
        session.send(VERSION)
        await asyncio.sleep(1.0)  # five stall timeouts, well within the idle timeout
        session.send(upload_batch() + QUIT)
        packets = await session.finish(close=False)
        assert packets[5:] == ["status 200", "hash-algo=sha256", DELIM, f"{OID} {len(BODY)} upload", FLUSH, *OK]


async def test_a_stalled_command_and_an_idle_session_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with site(tmp_path, ssh_stall_timeout=0.2, ssh_idle_timeout=0.5) as s:
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            stalled = s.start("alice", "acme/game", Operation.UPLOAD)
            stalled.send(VERSION + pkt("batch", "transfer=ssh"))
            assert await stalled.finish(close=False) == [*HELLO, *OK]
            idle = s.start("alice", "acme/game", Operation.UPLOAD)
            idle.send(VERSION)
            assert await idle.finish(close=False) == [*HELLO, *OK]
        reasons = [
            str(getattr(r, "reason", "")) for r in caplog.records if getattr(r, "event", "") == "ssh_session_end"
        ]
        assert reasons == ["stalled for 0.2 seconds", "idle for 0.5 seconds"]


async def test_permissions(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        packets = await s.run("rita", "acme/game", Operation.UPLOAD, VERSION + upload_batch() + QUIT)
        assert packets[5:] == ["status 403", DELIM, "write access to this repository is required", FLUSH, *OK]
        raw = VERSION + pkt("lock", "path=a.bin", FLUSH) + pkt("list-lock", FLUSH) + QUIT
        packets = await s.run("rita", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:] == [
            "status 403",
            DELIM,
            "write access to this repository is required",
            FLUSH,
            "status 200",
            DELIM,
            FLUSH,
            *OK,
        ]
        # Without read access the repository does not exist, whatever the command.
        raw = VERSION + pkt("list-lock", FLUSH) + pkt(f"get-object {OID}", FLUSH) + QUIT
        packets = await s.run("olga", "acme/game", Operation.DOWNLOAD, raw)
        assert packets[5:] == [
            *["status 404", DELIM, "repository not found", FLUSH] * 2,
            *OK,
        ]
        # Put-object without write access: refused, and the body that follows is not read as commands.
        raw = VERSION + put(OID, len(BODY), BODY) + QUIT
        packets = await s.run("rita", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:] == ["status 403", DELIM, "write access to this repository is required", FLUSH]
        assert s.stored_files() == []


async def test_an_admin_upload_creates_the_repository(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        raw = VERSION + upload_batch() + put(OID, len(BODY), BODY) + QUIT
        packets = await s.run("root", "acme/new", Operation.UPLOAD, raw)
        assert packets[-4:] == [*OK, *OK]
        assert len(s.stored_files()) == 1


async def test_locks(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        raw = VERSION + pkt("lock", "path=a b.bin", "refname=refs/heads/main", FLUSH)
        raw += pkt("lock", "path=c.bin", FLUSH) + pkt("lock", "path=a b.bin", FLUSH) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        first = packets[5:11]
        assert first[0] == "status 201" and first[1] == "id=1" and first[2] == "path=a b.bin"
        assert str(first[3]).startswith("locked-at=") and first[4] == "ownername=alice" and first[5] == FLUSH
        conflict = packets[17:]
        assert conflict[:3] == ["status 409", "id=1", "path=a b.bin"]
        assert conflict[5:8] == [DELIM, "'a b.bin' is already locked by alice", FLUSH]

        raw = VERSION + pkt("list-lock", "limit=1", FLUSH) + QUIT
        packets = await s.run("rita", "acme/game", Operation.UPLOAD, raw)
        page = packets[5:]
        assert page[0] == "status 200" and str(page[1]).startswith("next-cursor=")
        cursor = str(page[1]).removeprefix("next-cursor=")
        assert page[2:5] == [DELIM, "lock 1", "path 1 a b.bin"]
        assert page[6:8] == ["ownername 1 alice", "owner 1 theirs"]
        raw = VERSION + pkt("list-locks", f"cursor={cursor}", "limit=1", FLUSH) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:8] == ["status 200", DELIM, "lock 2"] and "owner 2 ours" in packets
        raw = VERSION + pkt("list-lock", "cursor=forged", FLUSH) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:7] == ["status 422", DELIM]

        raw = VERSION + pkt("unlock 1", FLUSH) + pkt("unlock 1", "force=true", FLUSH) + pkt("unlock 99", FLUSH) + QUIT
        packets = await s.run("root", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:9] == [
            "status 403",
            DELIM,
            "the lock is owned by alice; only an admin may force it open",
            FLUSH,
        ]
        assert packets[9:11] == ["status 200", "id=1"]
        assert packets[-6:] == ["status 404", DELIM, "lock not found", FLUSH, *OK]


async def test_unknown_commands_and_arguments(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        raw = VERSION + pkt("frobnicate", "x=1", FLUSH) + pkt("get-object nothex", FLUSH) + upload_batch(size=-1)
        raw += pkt("batch", "hash-algo=md5", DELIM, FLUSH) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[5:9] == ["status 400", DELIM, "unknown command 'frobnicate'", FLUSH]
        assert packets[9:11] == ["status 422", DELIM]
        assert packets[13:15] == ["status 422", DELIM] and "invalid size" in str(packets[15])
        assert packets[17:21] == ["status 409", DELIM, "unsupported hash algorithm 'md5': lfsd uses sha256", FLUSH]
        assert packets[21:] == OK


class _GoneAfter:
    """A client that stops reading: after ``limit`` bytes its writes fail (gone) or its drain never ends (stalled)."""

    def __init__(self, limit: int, *, gone: bool) -> None:
        self.taken = 0
        self._limit = limit
        self._gone = gone

    def write(self, chunk: bytes) -> None:
        if self._gone and self.taken >= self._limit:
            raise ConnectionResetError("gone")
        self.taken += len(chunk)

    async def drain(self) -> None:
        if not self._gone and self.taken >= self._limit:
            await asyncio.Event().wait()


@pytest.mark.parametrize("gone", [True, False], ids=["gone", "stalled"])
async def test_a_download_nobody_reads(tmp_path: Path, gone: bool, caplog: pytest.LogCaptureFixture) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: many packets
    oid = hashlib.sha256(big).hexdigest()
    async with site(tmp_path, ssh_stall_timeout=0.3) as s:
        raw = VERSION + upload_batch(oid, len(big)) + put(oid, len(big), big) + QUIT
        packets = await s.run("alice", "acme/game", Operation.UPLOAD, raw)
        assert packets[-4:] == [*OK, *OK]
        reader = asyncio.StreamReader()
        reader.feed_data(VERSION + pkt(f"get-object {oid}", FLUSH) + QUIT)
        writer = _GoneAfter(200_000, gone=gone)
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            await asyncio.wait_for(
                serve(s.core, s.identities["rita"], RepoPath.parse("acme/game"), Operation.DOWNLOAD, reader, writer),
                30,
            )
        assert writer.taken < len(big)
        reasons = [
            str(getattr(r, "reason", "")) for r in caplog.records if getattr(r, "event", "") == "ssh_session_end"
        ]
        assert reasons == ["connection lost: gone" if gone else "stalled for 0.3 seconds"]
        assert not any(record.exc_info for record in caplog.records)


async def test_metrics_and_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    async with site(tmp_path, metrics=metrics) as s:
        with caplog.at_level(logging.INFO, "lfsd.ssh"):
            await _upload(s)
            await s.run("olga", "acme/game", Operation.UPLOAD, VERSION + upload_batch() + QUIT)
    text = metrics.exposition().decode()
    assert 'lfsd_ssh_commands_total{command="put-object",status="200"} 1.0' in text
    assert 'lfsd_ssh_commands_total{command="batch",status="200"} 1.0' in text
    assert 'lfsd_ssh_commands_total{command="batch",status="404"} 1.0' in text
    assert 'lfsd_batch_objects_total{operation="upload",result="action"} 1.0' in text
    received = next(line for line in text.splitlines() if line.startswith("lfsd_ssh_received_bytes_total "))
    assert float(received.split()[1]) > len(BODY)
    put_line = next(r for r in caplog.records if getattr(r, "command", "") == "put-object")
    assert put_line.getMessage() == "ssh put-object 200"
    fields = vars(put_line)
    assert fields["oid"] == OID and fields["user"] == "alice"
    assert fields["repo"] == "acme/game" and fields["bytes_in"] > len(BODY)
