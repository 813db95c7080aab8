"""Static files with their content hash in the name, so they are cached for a year and never go stale."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web

from lfsd.core.errors import NotFound

IMMUTABLE: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str


class StaticFiles:
    """Every file of ``lfsd/ui/static``, read and hashed once at start-up: ``name.<hash>.ext`` → its bytes."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._urls: dict[str, str] = {}
        self._assets: dict[str, Asset] = {}
        for entry in resources.files("lfsd.ui").joinpath("static").iterdir():
            if not entry.is_file():
                continue
            body = entry.read_bytes()
            stem, dot, ext = entry.name.rpartition(".")
            hashed = f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}{dot}{ext}"
            content_type = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            self._urls[entry.name] = f"{prefix}/static/{hashed}"
            self._assets[hashed] = Asset(body, content_type)

    def url(self, name: str) -> str:
        """The hashed URL of ``name``; a missing file is a programming error, found when the page renders."""
        return self._urls[name]

    async def handle(self, request: web.Request) -> web.Response:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            raise NotFound("no such file")
        charset = (
            "utf-8" if asset.content_type.startswith("text/") or asset.content_type.endswith("javascript") else None
        )
        response = web.Response(body=asset.body, content_type=asset.content_type, charset=charset)
        response.headers["Cache-Control"] = IMMUTABLE
        return response
