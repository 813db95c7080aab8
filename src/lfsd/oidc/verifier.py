"""JWT verification: signature (asymmetric algorithms only), issuer, audience, ``exp``, ``nbf`` and ``iat``.

Keys come from disk, read once at start: a PEM public key, or a JWKS file whose keys are chosen by the token's
``kid``. Nothing is fetched over the network. The algorithm is never taken on the token's word alone: it must be in
the configured list, which admits only asymmetric ones (so neither ``none`` nor an HMAC with the public key as its
secret, the algorithm-confusion attack), and must agree with the key's own ``alg`` when the JWKS gives one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lfsd.core.errors import Unauthorized
from lfsd.core.external import Claims

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_TOKEN_LENGTH: Final = 4096

PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


class InvalidKeys(ValueError):
    """The configured key or JWKS file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class VerifierKey:
    key: PublicKey
    algorithm: str | None  # the JWK's own ``alg``, when it names one


def parse_algorithms(value: str) -> frozenset[str]:
    names = frozenset(part for part in value.replace(",", " ").split() if part)
    wrong = sorted(names - ASYMMETRIC_ALGORITHMS)
    if not names or wrong:
        raise InvalidKeys(
            f"oidc_algorithms: {', '.join(wrong) or 'none given'} not allowed; "
            f"choose among {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
        )
    return names


def load_pem_key(path: Path) -> VerifierKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise InvalidKeys(f"cannot read the public key {path}: {error.strerror}") from None
    except ValueError:
        raise InvalidKeys(f"{path} is not a PEM public key") from None
    if not isinstance(key, PublicKey):
        raise InvalidKeys(f"{path}: only RSA, EC and Ed25519/Ed448 public keys are supported")
    return VerifierKey(key, None)


def load_jwks(path: Path) -> dict[str, VerifierKey]:
    """The JWKS file's signing keys by ``kid`` (a key without one is stored under ``""``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidKeys(f"cannot read the JWKS file {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidKeys(f"{path} is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidKeys(f"{path}: a JWKS document has a list named 'keys'")
    keys: dict[str, VerifierKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric ("oct") keys are never accepted
        try:
            key = jwt.PyJWK.from_dict(entry).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise InvalidKeys(f"{path}: key {entry.get('kid', '(no kid)')!r} cannot be read") from None
        if not isinstance(key, PublicKey):
            raise InvalidKeys(f"{path}: key {entry.get('kid', '(no kid)')!r} is not a public key")
        kid = entry.get("kid", "")
        algorithm = entry.get("alg")
        keys[str(kid)] = VerifierKey(key, algorithm if isinstance(algorithm, str) else None)
    if not keys:
        raise InvalidKeys(f"{path}: no signing keys")
    return keys


class JwtVerifier:
    """The core's ``ClaimsVerifier`` for one issuer."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: Mapping[str, VerifierKey],
        algorithms: frozenset[str],
        leeway_seconds: int,
    ) -> None:
        if not keys:
            raise InvalidKeys("no verification key")
        self._issuer = issuer
        self._audience = audience
        self._keys = dict(keys)
        self._algorithms = algorithms & ASYMMETRIC_ALGORITHMS
        self._leeway = leeway_seconds

    def _key_for(self, header: Mapping[str, object]) -> VerifierKey:
        kid = header.get("kid")
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise Unauthorized("invalid token: no key id")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            # One PEM key (stored without a kid) verifies whatever kid the issuer put in the header.
            if len(self._keys) == 1 and "" in self._keys:
                return self._keys[""]
            raise Unauthorized("invalid token: unknown key id")
        return key

    def verify(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("invalid token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise Unauthorized("invalid token: algorithm not allowed")
        key = self._key_for(header)
        if key.algorithm is not None and key.algorithm != algorithm:
            raise Unauthorized("invalid token: algorithm not allowed")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token not yet valid") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized("invalid token") from None
        if not isinstance(claims, dict):
            raise Unauthorized("invalid token")
        return claims
