"""``sendfile.send_now``: the part of a range a plain socket takes at once, written straight to it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest

from lfsd.http.sendfile import SEND_NOW_LIMIT, send_now

DATA = bytes(range(256)) * 400  # 100 KiB


class _Sink(asyncio.Protocol):
    def __init__(self, accepted: asyncio.Queue[asyncio.Transport]) -> None:
        self._accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._accepted.put_nowait(transport)


@contextlib.asynccontextmanager
async def _connected() -> AsyncIterator[tuple[asyncio.Transport, asyncio.StreamReader]]:
    """A plain TCP transport (the server's side, as aiohttp holds it) and the client's reader."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()
    server = await loop.create_server(lambda: _Sink(accepted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = await asyncio.wait_for(accepted.get(), 5)
    try:
        yield transport, reader
    finally:
        transport.close()
        writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
def body(tmp_path: Path) -> BinaryIO:
    path = tmp_path / "body"
    path.write_bytes(DATA)
    return path.open("rb", buffering=0)


async def test_a_small_range_goes_whole_after_what_the_transport_wrote(body: BinaryIO) -> None:
    async with _connected() as (transport, reader):
        transport.write(b"head:")
        assert send_now(transport, body, 1000, 50_000) == 50_000
        assert await reader.readexactly(5 + 50_000) == b"head:" + DATA[1000:51_000]
    body.close()


async def test_nothing_is_sent_behind_bytes_still_queued(body: BinaryIO) -> None:
    async with _connected() as (transport, _):
        # The client reads nothing: fill the socket until the transport has to queue. The range must not overtake
        # the queued bytes.
        while transport.get_write_buffer_size() == 0:
            transport.write(b"x" * 1024 * 1024)
        assert send_now(transport, body, 0, len(DATA)) == 0
    body.close()


async def test_a_closing_transport_or_an_error_sends_nothing(body: BinaryIO) -> None:
    async with _connected() as (transport, _):
        transport.close()
        assert send_now(transport, body, 0, len(DATA)) == 0
    body.close()
    async with _connected() as (transport, _):
        # Not a file with a descriptor: the loop's sendfile meets it again (and falls back to reading).
        assert send_now(transport, io.BytesIO(DATA), 0, len(DATA)) == 0


async def test_a_large_range_is_left_whole_to_the_loops_sendfile(tmp_path: Path) -> None:
    path = tmp_path / "large"
    path.write_bytes(b"z" * (SEND_NOW_LIMIT + 1))
    with path.open("rb", buffering=0) as large:
        async with _connected() as (transport, reader):
            assert send_now(transport, large, 0, SEND_NOW_LIMIT + 1) == 0
            # At the limit it is offered to the socket, which takes what its buffer holds (all of it, usually).
            sent = send_now(transport, large, 1, SEND_NOW_LIMIT)
            assert 0 < sent <= SEND_NOW_LIMIT
            assert await reader.readexactly(sent) == b"z" * sent
