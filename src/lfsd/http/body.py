"""Reading small JSON request bodies with a size cap."""

from __future__ import annotations

from aiohttp import web

from lfsd.core.errors import PayloadTooLarge


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request bodies here are limited to {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request bodies here are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
