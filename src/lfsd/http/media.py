"""The LFS media type and content negotiation."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from lfsd.core.errors import NotAcceptable, UnsupportedMediaType

LFS_JSON: Final = "application/vnd.git-lfs+json"
_ACCEPTABLE: Final = frozenset({LFS_JSON, "application/*", "*/*"})


def _media_types(header: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()]


def check_accept(request: web.Request) -> None:
    """406 unless ``Accept`` allows the LFS media type (an absent header allows anything)."""
    header = request.headers.get("Accept")
    if header is None:
        return
    if not any(media in _ACCEPTABLE for media in _media_types(header)):
        raise NotAcceptable()


def check_content_type(request: web.Request) -> None:
    """415 unless the body is ``application/vnd.git-lfs+json`` (with or without ``charset``)."""
    header = request.headers.get("Content-Type", "")
    if _media_types(header)[:1] != [LFS_JSON]:
        raise UnsupportedMediaType()
