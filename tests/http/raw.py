"""HTTP/1.1 over a plain socket, for header bytes that aiohttp's client refuses to send (non-ASCII, undecodable)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from lfsd.http.media import LFS_JSON


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def lfs_json(self) -> dict[str, Any]:
        assert self.content_type == LFS_JSON, (self.status, self.headers, self.body[:300])
        body: dict[str, Any] = json.loads(self.body)
        return body


async def raw_request(
    client: TestClient[Any, Any],
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> RawResponse:
    """Send exactly these header bytes (plus Host, Content-Length and Connection: close) and read to the end."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    assert "chunked" not in parsed.get("transfer-encoding", ""), "chunked responses are not decoded here"
    return RawResponse(int(status_line.split(" ")[1]), parsed, payload)
