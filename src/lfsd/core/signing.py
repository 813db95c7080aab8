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
    size: int
    expires_at: int


class LinkSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        if len(key) < 32:
            raise ValueError("the link signing key must be at least 32 bytes")
        self._key = key
        self.ttl_seconds = ttl_seconds

    def _mac(self, user_id: int, repo: RepoPath, oid: Oid, op: LinkOperation, size: int, expires_at: int) -> str:
        message = f"{_VERSION}\n{op.value}\n{repo}\n{oid}\n{user_id}\n{size}\n{expires_at}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, user_id: int, repo: RepoPath, oid: Oid, op: LinkOperation, size: int, now: int) -> str:
        expires_at = now + self.ttl_seconds
        mac = self._mac(user_id, repo, oid, op, size, expires_at)
        return f"{_VERSION}.{user_id}.{size}.{expires_at}.{mac}"

    def verify(self, token: str, repo: RepoPath, oid: Oid, op: LinkOperation, now: int) -> LinkGrant:
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != _VERSION:
            raise Unauthorized("invalid transfer link")
        _, user_text, size_text, expiry_text, mac = parts
        if not (user_text.isdigit() and size_text.isdigit() and expiry_text.isdigit()):
            raise Unauthorized("invalid transfer link")
        user_id, size, expires_at = int(user_text), int(size_text), int(expiry_text)
        expected = self._mac(user_id, repo, oid, op, size, expires_at)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace")):
            raise Unauthorized("invalid transfer link")
        if expires_at <= now:
            raise Unauthorized("transfer link expired")
        return LinkGrant(user_id=user_id, size=size, expires_at=expires_at)
