"""Short-lived transfer links: an HMAC over user, repository, oid, operation, size and expiry.

A link token is only valid for the exact repository, oid and operation it was issued for, and only until it
expires; the comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from lfsd.core.errors import Unauthorized
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath

_VERSION = "v1"


class LinkOperation(StrEnum):
    DOWNLOAD = "download"
    UPLOAD = "upload"
    VERIFY = "verify"


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid link token allows: ``size`` is the object size the batch request declared."""

    user_id: int
    repo_id: int
    size: int
    expires_at: int


class LinkSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        if len(key) < 32:
            raise ValueError("the link signing key must be at least 32 bytes")
        self._key = key
        self.ttl_seconds = ttl_seconds

    def _mac(self, repo: RepoPath, oid: Oid, op: LinkOperation, claims: tuple[int, int, int, int]) -> str:
        user_id, repo_id, size, expires_at = claims
        message = f"{_VERSION}\n{op.value}\n{repo}\n{oid}\n{user_id}\n{repo_id}\n{size}\n{expires_at}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(
        self, repo: RepoPath, oid: Oid, op: LinkOperation, *, user_id: int, repo_id: int, size: int, now: int
    ) -> str:
        """A token for ``op`` on ``repo``/``oid``; the repository id rides along so transfers need no lookup."""
        claims = (user_id, repo_id, size, now + self.ttl_seconds)
        mac = self._mac(repo, oid, op, claims)
        return _VERSION + "." + ".".join(str(value) for value in claims) + "." + mac

    def verify(self, token: str, repo: RepoPath, oid: Oid, op: LinkOperation, now: int) -> LinkGrant:
        parts = token.split(".")
        if (
            len(parts) != 6
            or parts[0] != _VERSION
            or not all(part.isascii() and part.isdigit() and len(part) < 20 for part in parts[1:5])
        ):
            raise Unauthorized("invalid transfer link")
        user_id, repo_id, size, expires_at = (int(part) for part in parts[1:5])
        expected = self._mac(repo, oid, op, (user_id, repo_id, size, expires_at))
        if not hmac.compare_digest(expected.encode("ascii"), parts[5].encode("ascii", "replace")):
            raise Unauthorized("invalid transfer link")
        if expires_at <= now:
            raise Unauthorized("transfer link expired")
        return LinkGrant(user_id=user_id, repo_id=repo_id, size=size, expires_at=expires_at)
