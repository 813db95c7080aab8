"""Keys and tokens for the external-identity tests: an issuer made in the test, with ``cryptography`` and PyJWT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://ci.example.test"
AUDIENCE = "https://lfs.example.test"

RULES = """
[[rule]]
match = { repository = "acme/game", ref = "refs/heads/main" }
repository = "acme/game"
permission = "write"
user = "ci-bot"

[[rule]]
match = { repository = "acme/game" }
repository = "acme/game"
permission = "read"
user = "ci-bot"

[[rule]]
match = { project_path = "tools/*", ref_type = "branch" }
repository = "{project_path}"
permission = "write"
user = "ci-bot"
"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    kid: str
    algorithm: str

    @classmethod
    def rsa(cls, kid: str = "rsa-1") -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid, "RS256")

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid, "ES256")

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            text = jwt.algorithms.RSAAlgorithm.to_jwk(public)
        else:
            text = jwt.algorithms.ECAlgorithm.to_jwk(public)
        document: dict[str, Any] = json.loads(text)
        return {**document, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def token(self, *, header: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "sub": "repo:acme/game:ref:refs/heads/main",
            "repository": "acme/game",
            "ref": "refs/heads/main",
            "actor": "octocat",
        }
        claims.update(overrides)
        claims = {key: value for key, value in claims.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **(header or {})})


def unsigned(claims: dict[str, Any]) -> str:
    """``alg: none``: no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hmac_with_public_key(key: SigningKey, claims: dict[str, Any]) -> str:
    """The algorithm-confusion forgery: HS256 with the issuer's *public* key PEM as the HMAC secret."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(key.public_pem(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps({"keys": [key.jwk() for key in keys]}))
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
