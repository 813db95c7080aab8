"""A client cannot forge or break a log line: the real server, both log formats, hostile paths and headers."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

from tests.e2e.harness import Server, cli

FORGED = "2026-01-01 00:00:00,000 INFO lfsd.access: forged"
# A path whose decoded repo holds CR and LF followed by a whole fake log line; bytes in headers that decode to C1
# NEL, U+2028 (a line break to some viewers) and an undecodable byte (a lone surrogate once aiohttp decodes it).
HOSTILE_PATH = "/acme/x%0d%0a" + FORGED.replace(" ", "%20") + "/info/lfs/locks"
HOSTILE_AGENT = b"agent\xc2\x85" + FORGED.encode() + b"\xe2\x80\xa8 status=200 \xff"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


def _request(server: Server, target: str, agent: bytes, authorization: bytes = b"") -> bytes:
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/vnd.git-lfs+json\r\n"
    extra = b"User-Agent: " + agent + b"\r\n"
    if authorization:
        extra += b"Authorization: " + authorization + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + extra + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _run(tmp_path: Path, log_format: str) -> str:
    data = tmp_path / "data"
    data.mkdir()
    cli(data, "user", "add", "root")  # a user before the first start: no admin banner, only log records
    server = Server.start(data, extra_env={"LFSD_LOG_FORMAT": log_format})
    try:
        statuses = [
            _request(server, HOSTILE_PATH, HOSTILE_AGENT).split(b" ", 2)[1],
            _request(server, "/acme/game.git/info/lfs/locks", HOSTILE_AGENT, b"Bearer \xff\r\n").split(b" ", 2)[1],
        ]
    finally:
        assert server.stop() == 0
    assert statuses == [b"404", b"401"]
    log = server.log()
    assert "Logging error" not in log and "Traceback" not in log, log
    return log


def test_text_logs_escape_what_the_client_sent(tmp_path: Path) -> None:
    log = _run(tmp_path, "text")
    access = [line for line in log.splitlines() if " lfsd.access: " in line]
    assert len(access) == 2, log
    for line in log.splitlines():
        assert TEXT_LINE.match(line) or line.startswith("    "), f"a line no record wrote: {line!r}"
    assert not any(line.startswith(FORGED) for line in log.splitlines())
    first = access[0]
    assert 'repo="acme/x\\r\\n2026-01-01 00:00:00,000 INFO lfsd.access: forged"' in first, first
    assert 'user_agent="agent\\x85' in first and '\\u2028 status=200 \\udcff"' in first, first


def test_json_logs_keep_what_the_client_sent_on_one_line(tmp_path: Path) -> None:
    log = _run(tmp_path, "json")
    entries = [json.loads(line) for line in log.splitlines()]
    access = [entry for entry in entries if entry.get("logger") == "lfsd.access"]
    assert len(access) == 2, log
    assert access[0]["repo"] == "acme/x\r\n" + FORGED
    assert access[0]["user_agent"] == "agent\x85" + FORGED + "\u2028 status=200 \udcff"
    assert not any(line.startswith(FORGED) for line in log.splitlines())
