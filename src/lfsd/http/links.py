"""lfsd's own transfer links: hrefs under the repository's LFS URL, and the ``Authorization`` scheme carrying a
signed token. The core signs; this module is the only one that knows how a link looks on the wire."""

from __future__ import annotations

from typing import Final

from lfsd.core.auth import Repo
from lfsd.core.batch import Action
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation

LINK_AUTH_SCHEME: Final = "LFSD-Link"


class HttpLinks:
    """The core's ``LinkFactory`` for one request: links are built on the base URL the client reached us by."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    def action(self, repo: Repo, oid: Oid, operation: Operation, token: str, expires_in: int) -> Action:
        href = f"{self._base}/{repo.path}.git/info/lfs/objects/{oid}"
        if operation is Operation.VERIFY:
            href += "/verify"
        return Action(href=href, header={"Authorization": f"{LINK_AUTH_SCHEME} {token}"}, expires_in=expires_in)
