"""Who is calling and what they may do with a repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from lfsd.core.errors import Forbidden, NotFound, Unauthorized
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope


class Permission(IntEnum):
    """Grants are ordered: each level includes the ones below it."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str) -> Permission:
        try:
            level = cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown permission {value!r}: expected read, write or admin") from None
        if level is cls.NONE:
            raise ValueError("unknown permission 'none': expected read, write or admin")
        return level


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user. ``token_id`` is the personal access token that authenticated them (0: a password);
    ``ceiling`` the most that credential allows anywhere (a read-only token: ``READ``).

    ``repo_scope``: the credential is valid only for that repository (any other: ``NONE``): a JWT rule's, or
    ``git-lfs-authenticate``'s. ``scope_grant``: what
    the credential itself grants on ``repo_scope``, whatever the user's grants (an external identity's rule; see
    ``core/external.py``). ``valid_until``: when the credential expires (epoch seconds, 0: never), so that no
    transfer link outlives it.
    ``scope``: the token's scope (None: a password or another credential).
    """

    user_id: int
    name: str
    is_admin: bool
    token_id: int = 0
    ceiling: Permission = Permission.ADMIN
    repo_scope: RepoPath | None = None
    scope_grant: Permission = Permission.NONE
    valid_until: int = 0
    scope: Scope | None = None


@dataclass(frozen=True, slots=True)
class Repo:
    id: int
    path: RepoPath
    is_public: bool
    locking_enabled: bool = True


@dataclass(frozen=True, slots=True)
class Standing:
    """What holds now for the caller a transfer link was issued to, read when the link is used.

    ``user`` is None for an anonymous link, and for a user who has since been disabled or deleted (then
    ``user_ok`` is False); ``token_ok`` is False when the link's token has been revoked.
    """

    repo: Repo
    user: Identity | None
    user_ok: bool
    token_ok: bool
    grant: Permission
    objects_removed_at: datetime | None = None  # links issued before it re-check their object (remove-objects)


def effective_permission(identity: Identity | None, repo: Repo, grant: Permission) -> Permission:
    """The caller's permission on ``repo``: server admins hold everything, public repositories are readable; and
    never more than the credential's ceiling (a read-only token reads, whatever the grant). A credential scoped to
    one repository has no permission on any other, and its own grant on that one (``scope_grant``)."""
    if identity is not None and identity.repo_scope is not None and repo.path != identity.repo_scope:
        return Permission.NONE
    if identity is not None and identity.is_admin:
        return identity.ceiling
    level = max(grant, identity.scope_grant) if identity is not None else Permission.NONE
    if repo.is_public:
        level = max(level, Permission.READ)
    return min(level, identity.ceiling) if identity is not None else level


def require(identity: Identity | None, granted: Permission, needed: Permission) -> None:
    """Raise the error the LFS API specifies when ``granted`` falls short of ``needed``.

    Anonymous callers get 401 (so git asks for credentials); a reader asking to write gets 403; a user with no
    access at all gets 404, so that private repositories are not revealed to them.
    """
    if granted >= needed:
        return
    if identity is None:
        raise Unauthorized()
    if granted >= Permission.READ:
        raise Forbidden(f"{needed.name.lower()} access to this repository is required")
    raise NotFound("repository not found")
