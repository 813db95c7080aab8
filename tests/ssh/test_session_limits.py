"""The per-user transfer cap over SSH (shared with the HTTP API's) and the session metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path

from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.transfer_slots import user_key
from lfsd.http.inflight import InFlight
from lfsd.memory import MemoryReleaser
from lfsd.observability.metrics import Metrics
from lfsd.ssh.transfer import serve
from tests.ssh.wire import DELIM, FLUSH, Collected, Site, data, pkt, site

VERSION = pkt("version 1", FLUSH)
QUIT = pkt("quit", FLUSH)
OK = ["status 200", FLUSH]
BODY = b"\xffcapped\n" * 200
OID = hashlib.sha256(BODY).hexdigest()
PUT = pkt(f"put-object {OID}", f"size={len(BODY)}", DELIM) + data(BODY, 1000) + pkt(FLUSH)
GET = pkt(f"get-object {OID}", FLUSH)


async def _run(s: Site, inflight: InFlight, user: str, operation: Operation, raw: bytes) -> list[str | bytes]:
    """A session whose transfers count against ``inflight``, the HTTP server's slots."""
    core = dataclasses.replace(s.core, slots=inflight, max_transfers_per_user=1, transfer_queue_wait=0)
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    out = Collected()
    await asyncio.wait_for(serve(core, s.identities[user], RepoPath.parse("acme/game"), operation, reader, out), 30)
    return out.packets


async def test_a_download_over_the_cap_is_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    inflight = InFlight(MemoryReleaser())
    async with site(tmp_path) as s:
        assert (await _run(s, inflight, "alice", Operation.UPLOAD, VERSION + PUT + QUIT))[-4:] == [*OK, *OK]
        rita = user_key(s.identities["rita"].user_id)
        with inflight.admit(rita, 1):  # an HTTP download of rita's in progress
            packets = await _run(s, inflight, "rita", Operation.DOWNLOAD, VERSION + GET + GET + QUIT)
            assert packets[5:9] == ["status 429", DELIM, "at most 1 transfers at once per user", FLUSH]
            assert packets[9:13] == ["status 429", DELIM, "at most 1 transfers at once per user", FLUSH]
            assert packets[13:] == OK
            # Another user's transfers are not counted against rita's.
            alice = await _run(s, inflight, "alice", Operation.DOWNLOAD, VERSION + GET + QUIT)
            assert alice[5:7] == ["status 200", f"size={len(BODY)}"]
        packets = await _run(s, inflight, "rita", Operation.DOWNLOAD, VERSION + GET + QUIT)
        assert packets[5:7] == ["status 200", f"size={len(BODY)}"] and packets[-2:] == OK
        assert inflight._per_user == {}  # every slot went back


async def test_an_upload_over_the_cap_ends_the_session_and_stores_nothing(tmp_path: Path) -> None:
    inflight = InFlight(MemoryReleaser())
    async with site(tmp_path) as s:
        with inflight.admit(user_key(s.identities["alice"].user_id), 1):
            packets = await _run(s, inflight, "alice", Operation.UPLOAD, VERSION + PUT + QUIT)
        # The body was on its way: nothing after the refusal is read as a command.
        assert packets[5:] == ["status 429", DELIM, "at most 1 transfers at once per user", FLUSH]
        assert s.stored_files() == []
        assert inflight._per_user == {}


async def test_session_metrics(tmp_path: Path) -> None:
    metrics = Metrics()
    async with site(tmp_path, metrics=metrics) as s:
        running = s.start("alice", "acme/game", Operation.UPLOAD)
        running.send(VERSION)
        await asyncio.sleep(0)
        text = metrics.exposition().decode()
        assert 'lfsd_ssh_transfer_sessions_active{operation="upload"} 1.0' in text
        assert 'lfsd_ssh_transfer_sessions_total{operation="upload"} 1.0' in text
        await running.finish()
        await s.run("rita", "acme/game", Operation.DOWNLOAD, VERSION + QUIT)
    text = metrics.exposition().decode()
    assert 'lfsd_ssh_transfer_sessions_active{operation="upload"} 0.0' in text
    assert 'lfsd_ssh_transfer_sessions_active{operation="download"} 0.0' in text
    assert 'lfsd_ssh_transfer_sessions_total{operation="upload"} 1.0' in text
    assert 'lfsd_ssh_transfer_sessions_total{operation="download"} 1.0' in text
