"""Short-lived transfer links: an HMAC over user, token, repository, oid, operation, size and expiry.

A link token is only valid for the exact repository, oid and operation it was issued for, and only until it
expires; the comparison is constant-time. The signature proves only what was true when the batch was answered: the
caller's standing (user enabled, token not revoked, grant) is checked again when the link is used
(``AccessControl.admit_link``), so revocation does not wait for the link to expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from lfsd.core.errors import Unauthorized
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.text import ascii_number

# v2 added the token id. v1 links are refused: they cannot say which token to check for revocation.
# v3 added the credential's own grant (an external identity's, ``Identity.scope_grant``); v2 links are refused, so
# at an upgrade, links handed out before it are asked for again (they live minutes).
_VERSION = "v3"
_CLAIMS = 6


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid link token allows: ``size`` is the object size the batch request declared.

    ``user_id`` is 0 for an anonymous caller; ``token_id`` is the personal access token the batch request was
    authenticated with, 0 for a password or no credentials; ``scope_grant`` the permission the credential itself
    granted on this repository (an external identity: a JWT rule's), 0 for none.
    """

    user_id: int
    token_id: int
    repo_id: int
    size: int
    expires_at: int
    issued_at: int  # derived from the expiry and this server's link lifetime: at most the time it was issued
    scope_grant: int = 0


class LinkSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        if len(key) < 32:
            raise ValueError("the link signing key must be at least 32 bytes")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.ttl_seconds = ttl_seconds

    def _macs(
        self,
        repo: RepoPath,
        op: Operation,
        user_id: int,
        token_id: int,
        repo_id: int,
        expires_at: int,
        scope_grant: int,
    ) -> Callable[[Oid, int], str]:
        """The MAC of each object's link (by oid and size): the one place the signed message is spelled, for minting
        and verifying. What the objects of a batch share is formatted once (issue 17): each MAC is one message and
        one HMAC."""
        # One line each: version, operation, repository, oid, then the claims in the token's order (user, token,
        # repository id, size, expiry, grant).
        head = f"{_VERSION}\n{op.value}\n{repo}\n"
        before, after = f"{user_id}\n{token_id}\n{repo_id}\n", f"\n{expires_at}\n{scope_grant}"
        keyed = self._keyed

        def mac(oid: Oid, size: int) -> str:
            # A copy of the keyed state skips hashing the padded key again.
            state = keyed.copy()
            state.update(f"{head}{oid}\n{before}{size}{after}".encode())
            return base64.urlsafe_b64encode(state.digest()).rstrip(b"=").decode("ascii")

        return mac

    def sign(
        self,
        repo: RepoPath,
        oid: Oid,
        op: Operation,
        *,
        user_id: int,
        token_id: int = 0,
        repo_id: int,
        size: int,
        now: int,
        expires_at: int | None = None,
        scope_grant: int = 0,
    ) -> str:
        """A token for ``op`` on ``repo``/``oid``; the repository id rides along so transfers need no lookup.

        ``expires_at`` shortens the link's life (never lengthens it): a link must not outlive its credential."""
        minter = self.minter(
            repo,
            op,
            user_id=user_id,
            token_id=token_id,
            repo_id=repo_id,
            now=now,
            expires_at=expires_at,
            scope_grant=scope_grant,
        )
        return minter(oid, size)

    def minter(
        self,
        repo: RepoPath,
        op: Operation,
        *,
        user_id: int,
        token_id: int = 0,
        repo_id: int,
        now: int,
        expires_at: int | None = None,
        scope_grant: int = 0,
    ) -> Callable[[Oid, int], str]:
        """``sign`` for many objects of one batch: what every link shares is formatted once (issue 17), and each
        object's token costs one message and one HMAC. Tokens are the same as ``sign``'s."""
        expiry = now + self.ttl_seconds if expires_at is None else min(expires_at, now + self.ttl_seconds)
        mac = self._macs(repo, op, user_id, token_id, repo_id, expiry, scope_grant)
        # The claims are user, token, repository, size, expiry and grant: the size is the object's own.
        before, after = f"{user_id}.{token_id}.{repo_id}.", f".{expiry}.{scope_grant}"

        def mint(oid: Oid, size: int) -> str:
            return f"{_VERSION}.{before}{size}{after}.{mac(oid, size)}"

        return mint

    def verify(self, token: str, repo: RepoPath, oid: Oid, op: Operation, now: int) -> LinkGrant:
        parts = token.split(".")
        numbers = [ascii_number(part, 19) for part in parts[1:-1]]
        if len(parts) != _CLAIMS + 2 or parts[0] != _VERSION or None in numbers:
            raise Unauthorized("invalid transfer link")
        user_id, token_id, repo_id, size, expires_at, scope_grant = (number for number in numbers if number is not None)
        expected = self._macs(repo, op, user_id, token_id, repo_id, expires_at, scope_grant)(oid, size)
        if not hmac.compare_digest(expected.encode("ascii"), parts[-1].encode("ascii", "replace")):
            raise Unauthorized("invalid transfer link")
        if expires_at <= now:
            raise Unauthorized("transfer link expired")
        return LinkGrant(
            user_id=user_id,
            token_id=token_id,
            repo_id=repo_id,
            size=size,
            expires_at=expires_at,
            issued_at=expires_at - self.ttl_seconds,
            scope_grant=scope_grant,
        )
