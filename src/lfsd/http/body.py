"""Reading small JSON request bodies with a size cap and a stall timeout."""

from __future__ import annotations

import asyncio

from aiohttp import ClientPayloadError, StreamReader, web

from lfsd.core.errors import BadRequest, PayloadTooLarge, RequestTimeout
from lfsd.http.keys import SETTINGS


class BodyCutShort(BadRequest):
    default_message = "the client disconnected before the body was complete"


async def read_chunk(content: StreamReader, stall_seconds: float) -> bytes:
    """The next bytes of a request body (``b""`` at its end); 408 when none arrive for ``stall_seconds``.

    A stalled body must end on its own: it would otherwise hold its connection, and a drain, for ever. Bytes that
    have arrived already are taken without a timer (``readany`` would return them at once too): arming and cancelling
    one per chunk cost more than the rest of the read (issue 17).
    """
    try:
        chunk = content.read_nowait()
        if chunk or content.at_eof():
            return chunk
        async with asyncio.timeout(stall_seconds):
            return await content.readany()
    except TimeoutError:
        raise RequestTimeout(f"no body data for {stall_seconds:g} seconds") from None
    except (ClientPayloadError, ConnectionError) as exc:
        raise BodyCutShort() from exc


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes ``limit`` bytes (declared or streamed), or 408 if it stalls."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request bodies here are limited to {limit} bytes")
    timeout = request.app[SETTINGS].body_timeout
    chunks: list[bytes] = []
    total = 0
    while chunk := await read_chunk(request.content, timeout):
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request bodies here are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
