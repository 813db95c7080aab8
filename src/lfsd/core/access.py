"""Authentication and authorization decisions, over the user and repository directories."""

from __future__ import annotations

from lfsd.core.auth import Identity, Permission, Repo, effective_permission, require
from lfsd.core.errors import NotFound, Unauthorized
from lfsd.core.ports import RepoDirectory, UserDirectory
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import looks_like_token


class AccessControl:
    def __init__(self, users: UserDirectory, repos: RepoDirectory) -> None:
        self._users = users
        self._repos = repos

    async def authenticate_basic(self, name: str, secret: str) -> Identity:
        """HTTP Basic with either a password or a personal access token of that user."""
        if looks_like_token(secret):
            identity = await self._users.identity_for_token(secret)
            if identity is not None and identity.name == name:
                return identity
        identity = await self._users.identity_for_password(name, secret)
        if identity is None:
            raise Unauthorized("invalid credentials")
        return identity

    async def authenticate_bearer(self, token: str) -> Identity:
        identity = await self._users.identity_for_token(token)
        if identity is None:
            raise Unauthorized("invalid or revoked token")
        return identity

    async def authorize(
        self, identity: Identity | None, path: RepoPath, needed: Permission, *, create: bool = False
    ) -> Repo:
        """The repository at ``path`` if the caller holds ``needed`` on it.

        With ``create``, a server admin's first push creates a missing repository (private).
        """
        repo = await self._repos.find(path)
        if repo is None:
            if create and identity is not None and identity.is_admin:
                return await self._repos.create(path, is_public=False)
            if identity is None:
                raise Unauthorized()
            raise NotFound("repository not found")
        require(identity, await self.permission(identity, repo), needed)
        return repo

    async def permission(self, identity: Identity | None, repo: Repo) -> Permission:
        grant = await self._repos.grant_of(repo, identity.user_id) if identity is not None else Permission.NONE
        return effective_permission(identity, repo, grant)
