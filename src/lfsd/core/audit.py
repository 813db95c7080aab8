"""The audit log: who changed what, when, from where, and the outcome. Append-only; never holds a secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from lfsd.core.auth import Identity
from lfsd.core.tokens import looks_like_token

MAX_ACTOR_LENGTH = 200
MAX_ACTION_LENGTH = 64
MAX_TARGET_LENGTH = 1100
MAX_ADDRESS_LENGTH = 64


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"  # the actor may not do this
    FAILED = "failed"  # allowed, but it did not happen (no such user, name taken, ...)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling a use case, and from where. ``user_id`` 0: not a user (the command line on the server)."""

    name: str
    user_id: int
    is_admin: bool
    address: str

    @classmethod
    def cli(cls, os_user: str) -> Actor:
        """Whoever can run ``lfsd`` against the database holds the server: a server admin, named as such."""
        return cls(name=f"cli:{os_user}"[:MAX_ACTOR_LENGTH], user_id=0, is_admin=True, address="local")

    @classmethod
    def retention(cls) -> Actor:
        """The server itself, pruning the audit log by ``audit_retention_days``."""
        return cls(name="lfsd:retention", user_id=0, is_admin=True, address="local")

    @classmethod
    def of(cls, identity: Identity, address: str) -> Actor:
        return cls(name=identity.name, user_id=identity.user_id, is_admin=identity.is_admin, address=address)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    outcome: Outcome
    details: Mapping[str, object] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Newest first, at most ``limit``; each filter, when set, must match."""

    limit: int = 100
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def entries(self, query: AuditQuery) -> list[AuditEntry]: ...

    async def prune(self, before: datetime) -> int:
        """Delete the entries older than ``before`` (retention, the one deletion); how many went."""


def check_no_secret(details: Mapping[str, object]) -> None:
    """A last guard: a value shaped like a token never reaches the log, whatever a caller passed."""
    for key, value in details.items():
        if isinstance(value, str) and looks_like_token(value):
            raise ValueError(f"audit detail {key!r} looks like a secret")
