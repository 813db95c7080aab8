"""lfsd's own limits on request paths and header blocks, answered as LFS errors."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from lfsd.core.errors import HeadersTooLarge, UriTooLong
from lfsd.http.keys import SETTINGS


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Oversized paths and header blocks get LFS errors (aiohttp's own, much larger limits answer in plain text)."""
    settings = request.config_dict[SETTINGS]
    if len(request.raw_path) > settings.max_url_length:
        raise UriTooLong(f"request paths are limited to {settings.max_url_length} bytes")
    header_bytes = sum(len(name) + len(value) + 4 for name, value in request.raw_headers)
    if header_bytes > settings.max_header_bytes:
        raise HeadersTooLarge(f"request headers are limited to {settings.max_header_bytes} bytes")
    return await handler(request)
