"""``read_chunk``: bytes already received come back without a timer; an empty buffer waits, with the stall timeout."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientPayloadError, StreamReader
from aiohttp.base_protocol import BaseProtocol

from lfsd.core.errors import RequestTimeout
from lfsd.http.body import BodyCutShort, read_chunk


def _reader() -> StreamReader:
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    protocol.connection_made(asyncio.Transport())  # a connection that is open: a read may wait on it
    return StreamReader(protocol, 2**16, loop=loop)


async def test_buffered_bytes_then_the_end() -> None:
    content = _reader()
    content.feed_data(b"abc")
    content.feed_data(b"def")
    assert await read_chunk(content, 0.01) == b"abcdef"
    content.feed_eof()
    assert await read_chunk(content, 0.01) == b""
    assert await read_chunk(content, 0.01) == b""


async def test_an_empty_buffer_waits_for_the_next_bytes() -> None:
    content = _reader()
    reading = asyncio.ensure_future(read_chunk(content, 5.0))
    await asyncio.sleep(0)
    assert not reading.done()
    content.feed_data(b"late")
    assert await reading == b"late"


async def test_a_stall_is_408() -> None:
    with pytest.raises(RequestTimeout):
        await read_chunk(_reader(), 0.01)


@pytest.mark.parametrize("buffered", [b"", b"partial"])
async def test_a_broken_body_is_cut_short_with_or_without_bytes_waiting(buffered: bytes) -> None:
    content = _reader()
    content.feed_data(buffered)
    content.set_exception(ClientPayloadError("connection lost"))
    with pytest.raises(BodyCutShort):
        await read_chunk(content, 0.01)
