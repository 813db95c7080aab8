"""Personal access tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from enum import IntEnum
from typing import Final

TOKEN_PREFIX: Final = "lfsd_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX) and 30 < len(secret) < 100


def token_digest(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough (no KDF needed) and allows an indexed lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


MAX_TOKEN_LABEL_LENGTH = 100


class Scope(IntEnum):
    """What a token may do, stored as its number. ``write`` includes ``read`` (and locks); ``admin`` includes
    ``write`` and opens the admin API to a server admin (only server admins are given one)."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str) -> Scope:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown token scope {value!r}: expected read, write or admin") from None

    @property
    def names(self) -> list[str]:
        return ["read", "write", "admin"][: int(self)]
