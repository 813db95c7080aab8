"""The credential ``git-lfs-authenticate`` hands out: a short-lived bearer value scoped to one repository and one
operation, signed with the server's key.

It names the SSH key that asked for it, not only the user: the HTTP API turns it back into the key's user on every
request (``SshKeyDirectory.identity_for_key``), so a removed key or a disabled user stops it at once, long before it
expires. The identity it gives is valid only for its repository (``Identity.repo_scope``) and at most reads
(``download``) or writes (``upload``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Protocol

from lfsd.core.auth import Identity, Permission
from lfsd.core.errors import InvalidRepoPath, Unauthorized
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.text import ascii_number

SSH_TOKEN_PREFIX: Final = "lfsdssh1."  # noqa: S105 - a prefix, not a secret
# Its own MAC domain: a value signed for a transfer link can never verify here, nor the other way round.
_DOMAIN: Final = "lfsd git-lfs-authenticate v1"
_CEILINGS: Final = {Operation.DOWNLOAD: Permission.READ, Operation.UPLOAD: Permission.WRITE}


@dataclass(frozen=True, slots=True)
class SshGrant:
    key_id: int
    repo: RepoPath
    operation: Operation
    expires_at: int

    @property
    def ceiling(self) -> Permission:
        return _CEILINGS[self.operation]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SshAuthSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        if len(key) < 32:
            raise ValueError("the signing key must be at least 32 bytes")
        self._key = key
        self.ttl_seconds = ttl_seconds

    def _mac(self, key_id: int, repo: str, operation: str, expires_at: int) -> str:
        message = "\n".join([_DOMAIN, str(key_id), repo, operation, str(expires_at)]).encode("utf-8")
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, key_id: int, repo: RepoPath, operation: Operation, now: int) -> str:
        if operation not in _CEILINGS:
            raise ValueError(f"git-lfs-authenticate serves download and upload, not {operation}")
        expires_at = now + self.ttl_seconds
        mac = self._mac(key_id, repo, operation.value, expires_at)
        encoded_repo = _b64(repo.encode("ascii"))
        return f"{SSH_TOKEN_PREFIX}{key_id}.{operation.value}.{expires_at}.{encoded_repo}.{mac}"

    def verify(self, token: str, now: int) -> SshGrant:
        parts = token.removeprefix(SSH_TOKEN_PREFIX).split(".")
        if not token.startswith(SSH_TOKEN_PREFIX) or len(parts) != 5:
            raise Unauthorized("invalid SSH credential")
        raw_key, raw_operation, raw_expiry, encoded_repo, mac = parts
        key_id, expires_at = ascii_number(raw_key, 12), ascii_number(raw_expiry, 12)
        operation = Operation.for_batch(raw_operation)
        try:
            repo = RepoPath.parse(base64.urlsafe_b64decode(encoded_repo + "=" * (-len(encoded_repo) % 4)).decode())
        except (binascii.Error, ValueError, InvalidRepoPath):
            raise Unauthorized("invalid SSH credential") from None
        if key_id is None or expires_at is None or operation is None:
            raise Unauthorized("invalid SSH credential")
        expected = self._mac(key_id, repo, operation.value, expires_at)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace")):
            raise Unauthorized("invalid SSH credential")
        if expires_at <= now:
            raise Unauthorized("SSH credential expired: git-lfs asks for a new one")
        return SshGrant(key_id, repo, operation, expires_at)


class SshKeyDirectory(Protocol):
    async def identity_for_key(self, key_id: int) -> Identity | None:
        """The enabled user key ``key_id`` belongs to, or None (key removed, user disabled or deleted)."""


@dataclass(frozen=True, slots=True)
class SshCredentials:
    """What the HTTP API needs to accept ``git-lfs-authenticate``'s credentials."""

    signer: SshAuthSigner
    keys: SshKeyDirectory
    clock: Callable[[], float]

    async def identity(self, token: str) -> Identity:
        grant = self.signer.verify(token, int(self.clock()))
        identity = await self.keys.identity_for_key(grant.key_id)
        if identity is None:
            raise Unauthorized("the SSH key of this credential was removed or its user disabled")
        return replace(identity, ceiling=grant.ceiling, repo_scope=grant.repo)
