"""What the administration use cases read and change: records of users, tokens, repositories and grants, and
the ports the database implements for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lfsd.core.auth import Permission, Repo
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    has_password: bool
    created_at: datetime
    last_active_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never its secret, nor its digest."""

    id: int
    user_id: int
    user_name: str
    label: str | None
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class RepoInfo:
    repo: Repo
    created_at: datetime
    objects: int
    bytes: int
    last_push: datetime | None


@dataclass(frozen=True, slots=True)
class GrantInfo:
    repo_path: RepoPath
    user_name: str
    permission: Permission


class UserAdmin(Protocol):
    async def list_users(self, *, after: str | None = None, limit: int | None = None) -> list[UserInfo]:
        """By name: those after ``after``, at most ``limit``."""

    async def user_info(self, name: str) -> UserInfo | None:
        """The user ``name`` (deleted users are gone), or None."""

    async def add(self, name: str, *, is_admin: bool, password: str | None) -> object: ...

    async def set_disabled(self, name: str, disabled: bool) -> None: ...

    async def set_admin(self, name: str, is_admin: bool) -> None: ...

    async def set_password(self, name: str, password: str | None) -> None: ...

    async def delete(self, user_id: int) -> None:
        """Tokens and grants go; the user stays as a disabled, renamed tombstone that owns their locks."""


class TokenAdmin(Protocol):
    async def issue(
        self, user_id: int, *, label: str | None, scope: Scope, expires_at: datetime | None
    ) -> tuple[int, str]:
        """A new token's id and secret (the secret is stored only as a digest)."""

    async def tokens_of(self, user_id: int, *, after: int | None = None, limit: int | None = None) -> list[TokenInfo]:
        """Active tokens by id: those after ``after``, at most ``limit``."""

    async def token_info(self, token_id: int) -> TokenInfo | None: ...

    async def revoke(self, token_id: int) -> bool:
        """Whether an active token was revoked."""

    async def revoke_all(self, user_id: int) -> int: ...


class RepoAdmin(Protocol):
    async def find(self, path: RepoPath) -> Repo | None: ...

    async def create(self, path: RepoPath, *, is_public: bool) -> Repo: ...

    async def list_repos(self, *, after: RepoPath | None = None, limit: int | None = None) -> list[RepoInfo]:
        """By path: those after ``after``, at most ``limit``."""

    async def repo_info(self, path: RepoPath) -> RepoInfo | None: ...

    async def rename(self, repo: Repo, new_path: RepoPath) -> None:
        """Raises ``Conflict`` when ``new_path`` is taken."""

    async def delete(self, repo: Repo) -> None:
        """The repository, its grants, locks and links to objects go; object bodies stay for the collector."""

    async def set_public(self, repo: Repo, public: bool) -> None: ...

    async def set_locking(self, repo: Repo, enabled: bool) -> None: ...

    async def grants(
        self,
        *,
        repo: Repo | None = None,
        user_id: int | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[GrantInfo]:
        """By repository path, then user name: those after ``after`` (a path and a name), at most ``limit``."""

    async def set_grant(self, repo: Repo, user_id: int, permission: Permission) -> None: ...

    async def remove_grant(self, repo: Repo, user_id: int) -> bool: ...
