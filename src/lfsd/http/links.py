"""lfsd's own transfer links: hrefs under the repository's LFS URL, and the ``Authorization`` scheme carrying a
signed token. The core signs; this module is the only one that knows how a link looks on the wire."""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from lfsd.core.auth import Repo
from lfsd.core.batch import Action
from lfsd.core.errors import Unprocessable
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.service import STAGING_NONCE_HEX

LINK_AUTH_SCHEME: Final = "LFSD-Link"
NONCE_PARAM: Final = "upload"  # a direct upload's staging nonce, in its verify link's query
_NONCE: Final = re.compile(f"[0-9a-f]{{{STAGING_NONCE_HEX}}}")


class HttpLinks:
    """The core's ``LinkFactory`` for one request: links are built on the base URL the client reached us by."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    def action(
        self, repo: Repo, oid: Oid, operation: Operation, token: str, expires_in: int, *, nonce: str | None = None
    ) -> Action:
        href = f"{self._base}/{repo.path}.git/info/lfs/objects/{oid}"
        if operation is Operation.VERIFY:
            href += "/verify" if nonce is None else f"/verify?{NONCE_PARAM}={nonce}"
        return Action(href=href, header={"Authorization": f"{LINK_AUTH_SCHEME} {token}"}, expires_in=expires_in)


def verify_nonce(request: web.Request) -> str | None:
    """The staging nonce a verify link carries; None for a link from before nonces (``upload_id_for``)."""
    nonce = request.query.get(NONCE_PARAM)
    if nonce is not None and not _NONCE.fullmatch(nonce):
        raise Unprocessable("the verify link's upload nonce is malformed")
    return nonce
