from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from lfsd.core.errors import Unauthorized
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.signing import LinkSigner

KEY = b"k" * 32
REPO = RepoPath("acme/game")
OID = Oid("a" * 64)
NOW = 1_700_000_000


def test_round_trip() -> None:
    signer = LinkSigner(KEY, 600)
    token = signer.sign(REPO, OID, Operation.UPLOAD, user_id=7, token_id=5, repo_id=3, size=123, now=NOW)
    grant = signer.verify(token, REPO, OID, Operation.UPLOAD, NOW + 599)
    assert (grant.user_id, grant.token_id, grant.repo_id, grant.size, grant.expires_at) == (7, 5, 3, 123, NOW + 600)


@pytest.mark.parametrize(
    ("repo", "oid", "op", "now"),
    [
        (RepoPath("acme/other"), OID, Operation.UPLOAD, NOW),
        (REPO, Oid("b" * 64), Operation.UPLOAD, NOW),
        (REPO, OID, Operation.DOWNLOAD, NOW),
        (REPO, OID, Operation.UPLOAD, NOW + 600),
    ],
)
def test_link_is_bound_to_repo_oid_operation_and_time(repo: RepoPath, oid: Oid, op: Operation, now: int) -> None:
    signer = LinkSigner(KEY, 600)
    token = signer.sign(REPO, OID, Operation.UPLOAD, user_id=7, repo_id=3, size=123, now=NOW)
    with pytest.raises(Unauthorized):
        signer.verify(token, repo, oid, op, now)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace(".123.", ".124."),  # a larger size
        lambda t: t.replace("v3.7.", "v3.8."),  # another user
        lambda t: t.replace(".7.5.", ".7.0."),  # no token (a password login's link), so no revocation check
        lambda t: t.replace(".3.123.", ".4.123."),  # another repository id
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "v1" + t[2:],
        lambda t: "v2" + t[2:],  # the version 2 layout had no credential grant
        lambda t: "v4" + t[2:],
        lambda t: t.replace(".7.5.", ".7."),  # the version 1 layout, without a token id
        lambda t: t[: t.rindex(".") - 2] + ".2" + t[t.rindex(".") :],  # a credential grant it was not given
        lambda t: "garbage",
        lambda t: t + ".x",
        lambda t: t.replace(".123.", ".-1."),
        lambda t: t.replace(".123.", ".¹²³."),  # digits, but not ASCII ones
    ],
)
def test_forged_tokens_fail(mutate: object) -> None:
    signer = LinkSigner(KEY, 600)
    token = signer.sign(REPO, OID, Operation.UPLOAD, user_id=7, token_id=5, repo_id=3, size=123, now=NOW)
    assert callable(mutate)
    with pytest.raises(Unauthorized):
        signer.verify(mutate(token), REPO, OID, Operation.UPLOAD, NOW)


def test_credential_grant_rides_along_and_expiry_is_only_shortened() -> None:
    signer = LinkSigner(KEY, 600)
    token = signer.sign(
        REPO, OID, Operation.UPLOAD, user_id=7, repo_id=3, size=1, now=NOW, expires_at=NOW + 60, scope_grant=2
    )
    grant = signer.verify(token, REPO, OID, Operation.UPLOAD, NOW + 59)
    assert (grant.scope_grant, grant.expires_at) == (2, NOW + 60)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token, REPO, OID, Operation.UPLOAD, NOW + 60)
    later = signer.sign(REPO, OID, Operation.UPLOAD, user_id=7, repo_id=3, size=1, now=NOW, expires_at=NOW + 9999)
    assert signer.verify(later, REPO, OID, Operation.UPLOAD, NOW).expires_at == NOW + 600


def test_other_key_fails() -> None:
    token = LinkSigner(KEY, 600).sign(REPO, OID, Operation.UPLOAD, user_id=7, repo_id=3, size=1, now=NOW)
    with pytest.raises(Unauthorized):
        LinkSigner(b"x" * 32, 600).verify(token, REPO, OID, Operation.UPLOAD, NOW)


def test_short_key_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LinkSigner(b"short", 60)


def test_token_format_is_stable() -> None:
    """Links handed out before an upgrade (or by another worker or replica) still verify: the token and the signed
    message keep their layout, whatever the implementation."""
    token = LinkSigner(KEY, 600).sign(
        REPO, OID, Operation.DOWNLOAD, user_id=7, token_id=5, repo_id=3, size=123, now=NOW
    )
    claims = ["7", "5", "3", "123", str(NOW + 600), "0"]
    message = "\n".join(["v3", "download", "acme/game", "a" * 64, *claims]).encode()
    mac = base64.urlsafe_b64encode(hmac.new(KEY, message, hashlib.sha256).digest()).rstrip(b"=").decode()
    assert token == f"v3.{'.'.join(claims)}.{mac}"


def test_a_minters_tokens_are_signs_and_verify() -> None:
    signer = LinkSigner(KEY, 600)
    minter = signer.minter(REPO, Operation.UPLOAD, user_id=7, token_id=5, repo_id=3, now=NOW, scope_grant=2)
    for oid, size in [(OID, 123), (Oid("b" * 64), 0), (Oid("c" * 64), 2**40)]:
        token = minter(oid, size)
        signed = signer.sign(
            REPO, oid, Operation.UPLOAD, user_id=7, token_id=5, repo_id=3, size=size, now=NOW, scope_grant=2
        )
        assert token == signed
        grant = signer.verify(token, REPO, oid, Operation.UPLOAD, NOW)
        assert (grant.user_id, grant.token_id, grant.repo_id, grant.size, grant.scope_grant) == (7, 5, 3, size, 2)
