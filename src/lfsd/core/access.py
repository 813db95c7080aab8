"""Authentication and authorization decisions, over the user and repository directories."""

from __future__ import annotations

from dataclasses import replace

from lfsd.core.auth import Identity, Permission, Repo, Standing, effective_permission, require
from lfsd.core.errors import NotFound, Unauthorized
from lfsd.core.external import ExternalLogin, looks_like_jwt
from lfsd.core.login import Cache, PasswordLogin
from lfsd.core.ports import RepoDirectory, UserDirectory
from lfsd.core.repo import RepoPath
from lfsd.core.signing import LinkGrant
from lfsd.core.ssh_auth import SSH_TOKEN_PREFIX, SshCredentials
from lfsd.core.tokens import looks_like_token

StandingKey = tuple[int, int, int]  # repo id, user id, token id


class AccessControl:
    def __init__(
        self,
        users: UserDirectory,
        repos: RepoDirectory,
        passwords: PasswordLogin,
        standings: Cache[StandingKey, Standing],
        external: ExternalLogin | None = None,
        ssh: SshCredentials | None = None,
    ) -> None:
        self._users = users
        self._repos = repos
        self._passwords = passwords
        self._standings = standings
        self._external = external
        self._ssh = ssh  # git-lfs-authenticate's scoped credentials, when this server accepts them

    @property
    def logins(self) -> PasswordLogin:
        """The throttled password check, for front ends with a sign-in form of their own (the web UI)."""
        return self._passwords

    async def authenticate_basic(self, name: str, secret: str, address: str) -> Identity:
        """HTTP Basic with either a password or a personal access token of that user.

        ``address`` is the client's, for the failed-login throttle; tokens never wait for it nor for a password
        hash.
        """
        if looks_like_token(secret):
            identity = await self._users.identity_for_token(secret)
            if identity is not None and identity.name == name:
                return identity
        return await self._passwords.authenticate(name, secret, address)

    async def verify_password(self, name: str, password: str, address: str) -> bool:
        """Whether ``password`` is ``name``'s password (a token is not), through the same throttle as a login."""
        if looks_like_token(password):
            return False
        try:
            identity = await self._passwords.authenticate(name, password, address)
        except Unauthorized:
            return False
        return identity.name == name

    async def authenticate_bearer(self, token: str) -> Identity:
        if self._ssh is not None and token.startswith(SSH_TOKEN_PREFIX):
            return await self._ssh.identity(token)
        """A personal access token, or a JWT from the configured issuer (three dotted parts: never a token)."""
        if looks_like_jwt(token):
            if self._external is None:
                raise Unauthorized("invalid or revoked token")
            return await self._external.authenticate(token)
        identity = await self._users.identity_for_token(token)
        if identity is None:
            raise Unauthorized("invalid or revoked token")
        return identity

    async def authorize(
        self, identity: Identity | None, path: RepoPath, needed: Permission, *, create: bool = False
    ) -> Repo:
        """The repository at ``path`` if the caller holds ``needed`` on it.

        With ``create``, a server admin's first push creates a missing repository (private). The repository and
        the grant come from one query, so a missing repository and a private one are refused after the same work.
        """
        repo, grant = await self._repos.find_with_grant(path, identity.user_id if identity is not None else 0)
        if repo is None:
            if create and identity is not None and identity.is_admin:
                return await self._repos.create(path, is_public=False)
            if identity is None:
                raise Unauthorized()
            raise NotFound("repository not found")
        require(identity, effective_permission(identity, repo, grant), needed)
        return repo

    async def permission(self, identity: Identity | None, repo: Repo) -> Permission:
        grant = await self._repos.grant_of(repo, identity.user_id) if identity is not None else Permission.NONE
        return effective_permission(identity, repo, grant)

    async def admit_link(self, grant: LinkGrant, needed: Permission) -> bool:
        """Refuse a validly signed link whose caller no longer stands: user disabled or deleted, token revoked,
        grant below ``needed``, repository gone or no longer public for an anonymous link.

        Returns whether the link still proves that the repository holds its object: False when objects were removed
        from the repository after the link was issued, so the transfer checks the index again.

        One indexed query, remembered for a few seconds per (repository, user, token): revocation takes effect
        within that time, and a transfer burst costs one query.
        """
        key = (grant.repo_id, grant.user_id, grant.token_id)
        standing = self._standings.get(key)
        if standing is None:
            standing = await self._repos.standing(*key)
            if standing is None:
                raise NotFound("repository not found")
            self._standings.put(key, standing)
        if not standing.user_ok or not standing.token_ok:
            raise Unauthorized("the credentials this link was issued for are no longer valid")
        user = standing.user
        if user is not None and grant.scope_grant:
            # An external identity's link: what its rule granted on this repository, checked when it was issued
            # (the link is bound to this repository and cannot outlive the JWT); the user must still stand.
            level = Permission(min(grant.scope_grant, Permission.WRITE))
            user = replace(user, is_admin=False, ceiling=level, repo_scope=standing.repo.path, scope_grant=level)
        require(user, effective_permission(user, standing.repo, standing.grant), needed)
        removed = standing.objects_removed_at
        return removed is None or removed.timestamp() < grant.issued_at
