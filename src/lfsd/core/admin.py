"""The administration use cases: users, tokens, repositories and grants, each checked and audited.

Every front end (the command line, the web UI, the admin API) calls these with an ``Actor``. Server admins may do
everything; a user may manage their own tokens, and a repository's admins its access, visibility and locking.
Every change, and every refused call, is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from lfsd.core.audit import Actor, AuditEntry, AuditLog, AuditQuery, Outcome
from lfsd.core.audited import Audited
from lfsd.core.auth import Permission, Repo
from lfsd.core.directory import GrantInfo, RepoAdmin, RepoInfo, TokenAdmin, TokenInfo, UserAdmin, UserInfo
from lfsd.core.errors import BadRequest, Conflict, Forbidden, NotFound
from lfsd.core.locks import Lock
from lfsd.core.names import UserName
from lfsd.core.ports import GitRepositories, LockRepository
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import MAX_TOKEN_LABEL_LENGTH, Scope

T = TypeVar("T")
Clock = Callable[[], datetime]


class Administration:
    def __init__(
        self,
        users: UserAdmin,
        tokens: TokenAdmin,
        repos: RepoAdmin,
        locks: LockRepository,
        audit: AuditLog,
        clock: Clock,
        *,
        token_max_days: int | None = None,
        git: GitRepositories | None = None,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._repos = repos
        self._locks = locks
        self._audit = audit
        self._clock = clock
        self._audited = Audited(audit, clock)
        self._token_max_days = token_max_days
        self._git = git  # the bare Git repositories, when lfsd hosts Git: they follow their repository

    # -- the one pattern: check, do, record ------------------------------------------------------------------

    async def _record(
        self, actor: Actor, action: str, target: str, outcome: Outcome, details: Mapping[str, object]
    ) -> None:
        await self._audited.record(actor, action, target, outcome, details)

    async def _do(
        self,
        actor: Actor,
        action: str,
        target: str,
        work: Callable[[], Awaitable[T]],
        *,
        details: Mapping[str, object] | None = None,
        allowed: bool | None = None,
        change: bool = True,
    ) -> T:
        """Run ``work`` if ``actor`` may (default: server admins only), through the one audited path."""
        return await self._audited.run(
            actor,
            action,
            target,
            work,
            allowed=actor.is_admin if allowed is None else allowed,
            refusal=f"{action} needs a server administrator",
            details=details,
            change=change,
        )

    async def refuse_unless_admin(self, actor: Actor, action: str, target: str) -> None:
        """For a front end that checks before it reads a request: the refusal ``_do`` would give, recorded alike."""
        if not actor.is_admin:
            await self._record(actor, action, target, Outcome.DENIED, {})
            raise Forbidden(f"{action} needs a server administrator")

    async def _user(self, name: str) -> UserInfo:
        found = await self._users.user_info(name)
        if found is None:
            raise NotFound(f"no user named {name!r}")
        return found

    async def _repo(self, path: RepoPath) -> Repo:
        found = await self._repos.find(path)
        if found is None:
            raise NotFound(f"no repository {path}")
        return found

    async def _repo_admin(self, actor: Actor, path: RepoPath) -> bool:
        """Server admins, and users holding the admin grant on ``path``: they manage its access and settings."""
        if actor.is_admin:
            return True
        if actor.user_id == 0:
            return False
        repo = await self._repos.find(path)
        if repo is None:
            return False
        held = await self._repos.grants(repo=repo, user_id=actor.user_id)
        return any(grant.permission >= Permission.ADMIN for grant in held)

    # -- users -----------------------------------------------------------------------------------------------

    async def list_users(self, actor: Actor, *, after: str | None = None, limit: int | None = None) -> list[UserInfo]:
        async def work() -> list[UserInfo]:
            return await self._users.list_users(after=after, limit=limit)

        return await self._do(actor, "user.list", "*", work, change=False)

    async def show_user(self, actor: Actor, name: str) -> tuple[UserInfo, list[GrantInfo]]:
        async def work() -> tuple[UserInfo, list[GrantInfo]]:
            user = await self._user(name)
            return user, await self._repos.grants(user_id=user.id)

        return await self._do(actor, "user.show", f"user:{name}", work, change=False)

    async def add_user(self, actor: Actor, name: str, *, is_admin: bool, password: str | None) -> None:
        async def work() -> None:
            await self._users.add(UserName.parse(name), is_admin=is_admin, password=password)

        details = {"admin": is_admin, "password": password is not None}
        await self._do(actor, "user.add", f"user:{name}", work, details=details)

    async def set_disabled(self, actor: Actor, name: str, disabled: bool) -> None:
        async def work() -> None:
            await self._users.set_disabled(name, disabled)

        await self._do(actor, "user.disable" if disabled else "user.enable", f"user:{name}", work)

    async def set_admin(self, actor: Actor, name: str, is_admin: bool) -> None:
        async def work() -> None:
            if not is_admin and actor.name == name:
                raise BadRequest("server admins cannot remove their own admin right")
            await self._users.set_admin(name, is_admin)

        await self._do(actor, "user.admin", f"user:{name}", work, details={"admin": is_admin})

    async def set_password(self, actor: Actor, name: str, password: str | None) -> None:
        async def work() -> None:
            await self._users.set_password(name, password)

        # Users change their own password; the password itself is never recorded.
        own = actor.user_id != 0 and actor.name == name
        await self._do(actor, "user.passwd", f"user:{name}", work, allowed=actor.is_admin or own)

    async def change_own_password(
        self, actor: Actor, password: str | None, current_ok: Callable[[], Awaitable[bool]]
    ) -> None:
        """Self-service: the actor's own password, once ``current_ok`` has confirmed the current one."""

        async def work() -> None:
            if not await current_ok():
                raise Forbidden("the current password is wrong")
            await self._users.set_password(actor.name, password)

        await self._do(actor, "user.passwd", f"user:{actor.name}", work, allowed=actor.user_id != 0)

    async def user_grants(
        self, actor: Actor, name: str, *, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[GrantInfo]:
        async def work() -> list[GrantInfo]:
            user = await self._user(name)
            return await self._repos.grants(user_id=user.id, after=after, limit=limit)

        return await self._do(actor, "user.grants", f"user:{name}", work, change=False)

    async def delete_user(self, actor: Actor, name: str) -> None:
        async def work() -> None:
            user = await self._user(name)
            if user.id == actor.user_id:
                raise BadRequest("users cannot delete themselves")
            await self._users.delete(user.id)

        await self._do(actor, "user.delete", f"user:{name}", work)

    # -- tokens ----------------------------------------------------------------------------------------------

    def _expiry(self, days: int | None) -> datetime | None:
        limit = self._token_max_days
        if days is not None and days < 1:
            raise BadRequest("a token expires after at least 1 day")
        if limit is not None and days is not None and days > limit:
            raise BadRequest(f"tokens on this server expire after at most {limit} days")
        days = days if days is not None else limit
        return None if days is None else self._clock() + timedelta(days=days)

    async def create_token(
        self, actor: Actor, name: str, *, label: str | None = None, days: int | None = None, scope: Scope = Scope.WRITE
    ) -> tuple[TokenInfo, str]:
        """A new token and its secret, which is shown once and never stored."""
        if label is not None and (len(label) > MAX_TOKEN_LABEL_LENGTH or not label.isprintable()):
            raise BadRequest(f"a token label is at most {MAX_TOKEN_LABEL_LENGTH} printable characters")

        async def work() -> tuple[TokenInfo, str]:
            expires = self._expiry(days)
            user = await self._user(name)
            if scope is Scope.ADMIN and not user.is_admin:
                raise BadRequest("only server administrators are given tokens with the admin scope")
            token_id, secret = await self._tokens.issue(user.id, label=label, scope=scope, expires_at=expires)
            info = await self._tokens.token_info(token_id)
            assert info is not None
            details["token_id"] = token_id
            return info, secret

        details: dict[str, object] = {"label": label, "scopes": scope.names, "expires_days": days}
        own = actor.user_id != 0 and actor.name == name
        return await self._do(
            actor, "token.create", f"user:{name}", work, details=details, allowed=actor.is_admin or own
        )

    async def list_tokens(
        self, actor: Actor, name: str, *, after: int | None = None, limit: int | None = None
    ) -> list[TokenInfo]:
        async def work() -> list[TokenInfo]:
            return await self._tokens.tokens_of((await self._user(name)).id, after=after, limit=limit)

        own = actor.user_id != 0 and actor.name == name
        return await self._do(actor, "token.list", f"user:{name}", work, allowed=actor.is_admin or own, change=False)

    async def revoke_token(self, actor: Actor, token_id: int) -> TokenInfo:
        found = await self._tokens.token_info(token_id)
        own = found is not None and actor.user_id != 0 and found.user_id == actor.user_id

        async def work() -> TokenInfo:
            if found is None or not await self._tokens.revoke(token_id):
                raise NotFound(f"no active token {token_id}")
            return found

        target = f"token:{token_id}" if found is None else f"user:{found.user_name}"
        details = {"token_id": token_id}
        return await self._do(actor, "token.revoke", target, work, details=details, allowed=actor.is_admin or own)

    async def revoke_all_tokens(self, actor: Actor, name: str) -> int:
        count: dict[str, object] = {}

        async def work() -> int:
            revoked = await self._tokens.revoke_all((await self._user(name)).id)
            count["revoked"] = revoked
            return revoked

        own = actor.user_id != 0 and actor.name == name
        return await self._do(
            actor, "token.revoke_all", f"user:{name}", work, details=count, allowed=actor.is_admin or own
        )

    # -- repositories and grants -----------------------------------------------------------------------------

    async def list_repos(
        self, actor: Actor, *, after: RepoPath | None = None, limit: int | None = None
    ) -> list[RepoInfo]:
        async def work() -> list[RepoInfo]:
            return await self._repos.list_repos(after=after, limit=limit)

        return await self._do(actor, "repo.list", "*", work, change=False)

    async def show_repo(self, actor: Actor, path: RepoPath) -> tuple[RepoInfo, list[GrantInfo]]:
        async def work() -> tuple[RepoInfo, list[GrantInfo]]:
            info = await self._repos.repo_info(path)
            if info is None:
                raise NotFound(f"no repository {path}")
            return info, await self._repos.grants(repo=info.repo)

        return await self._do(actor, "repo.show", f"repo:{path}", work, change=False)

    async def create_repo(self, actor: Actor, path: RepoPath, *, public: bool) -> None:
        async def work() -> None:
            if await self._repos.find(path) is not None:
                raise Conflict(f"repository {path} already exists")
            await self._repos.create(path, is_public=public)
            if self._git is not None:
                await self._git.ensure(path)

        await self._do(actor, "repo.create", f"repo:{path}", work, details={"public": public})

    async def rename_repo(self, actor: Actor, path: RepoPath, new_path: RepoPath) -> None:
        async def work() -> None:
            repo = await self._repo(path)
            if self._git is None:
                await self._repos.rename(repo, new_path)
                return
            # The bare repository moves first (it refuses an occupied path), and moves back if the index refuses.
            await self._git.rename(path, new_path)
            try:
                await self._repos.rename(repo, new_path)
            except BaseException:
                await self._git.rename(new_path, path)
                raise

        await self._do(actor, "repo.rename", f"repo:{path}", work, details={"new_path": str(new_path)})

    async def delete_repo(self, actor: Actor, path: RepoPath) -> None:
        async def work() -> None:
            await self._repos.delete(await self._repo(path))
            if self._git is not None:
                await self._git.delete(path)

        await self._do(actor, "repo.delete", f"repo:{path}", work)

    async def set_public(self, actor: Actor, path: RepoPath, public: bool) -> None:
        async def work() -> None:
            await self._repos.set_public(await self._repo(path), public)

        allowed = await self._repo_admin(actor, path)
        await self._do(actor, "repo.public", f"repo:{path}", work, details={"public": public}, allowed=allowed)

    async def set_locking(self, actor: Actor, path: RepoPath, enabled: bool) -> None:
        async def work() -> None:
            await self._repos.set_locking(await self._repo(path), enabled)

        allowed = await self._repo_admin(actor, path)
        await self._do(actor, "repo.locking", f"repo:{path}", work, details={"locking": enabled}, allowed=allowed)

    async def grants(
        self, actor: Actor, path: RepoPath, *, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[GrantInfo]:
        async def work() -> list[GrantInfo]:
            return await self._repos.grants(repo=await self._repo(path), after=after, limit=limit)

        allowed = await self._repo_admin(actor, path)
        return await self._do(actor, "repo.grants", f"repo:{path}", work, change=False, allowed=allowed)

    async def grant(self, actor: Actor, path: RepoPath, name: str, permission: Permission) -> None:
        async def work() -> None:
            repo = await self._repo(path)
            await self._repos.set_grant(repo, (await self._user(name)).id, permission)

        details = {"user": name, "permission": permission.name.lower()}
        allowed = await self._repo_admin(actor, path)
        await self._do(actor, "repo.grant", f"repo:{path}", work, details=details, allowed=allowed)

    async def revoke(self, actor: Actor, path: RepoPath, name: str) -> None:
        async def work() -> None:
            repo = await self._repo(path)
            if not await self._repos.remove_grant(repo, (await self._user(name)).id):
                raise NotFound(f"{name} has no grant on {path}")

        allowed = await self._repo_admin(actor, path)
        await self._do(actor, "repo.revoke", f"repo:{path}", work, details={"user": name}, allowed=allowed)

    async def list_locks(self, actor: Actor, path: RepoPath, *, after_id: int, limit: int) -> tuple[list[Lock], bool]:
        """A repository's locks in id order after ``after_id``, at most ``limit``, and whether more follow."""

        async def work() -> tuple[list[Lock], bool]:
            return await self._locks.page((await self._repo(path)).id, after_id=after_id, limit=limit)

        return await self._do(actor, "lock.list", f"repo:{path}", work, change=False)

    async def force_unlock(self, actor: Actor, path: RepoPath, lock_id: int) -> Lock:
        details: dict[str, object] = {"lock_id": lock_id}

        async def work() -> Lock:
            deleted = await self._locks.delete((await self._repo(path)).id, lock_id, None)
            if deleted is None:
                raise NotFound(f"no lock {lock_id} in {path}")
            details.update(path=deleted.path, owner=deleted.owner_name)
            return deleted

        return await self._do(actor, "lock.force_unlock", f"repo:{path}", work, details=details)

    # -- the audit log ---------------------------------------------------------------------------------------

    async def audit(self, actor: Actor, query: AuditQuery) -> list[AuditEntry]:
        async def work() -> list[AuditEntry]:
            return await self._audit.entries(query)

        return await self._do(actor, "audit.list", "*", work, change=False)

    async def prune_audit(self, actor: Actor, older_than_days: int, *, record_nothing: bool = True) -> int:
        """Delete audit entries older than ``older_than_days`` days; the prune itself is recorded (with
        ``record_nothing`` False, only when it deleted something: several replicas pruning daily add one row)."""
        if older_than_days < 1:
            raise BadRequest("older-than must be at least 1 day")
        before = self._clock() - timedelta(days=older_than_days)
        details: dict[str, object] = {"older_than_days": older_than_days, "before": before.isoformat()}

        async def work() -> int:
            return await self._audit.prune(before)

        # Refusals are recorded by _do; the outcome is recorded here, with the count.
        pruned = await self._do(actor, "audit.prune", "*", work, details=details, change=False)
        if pruned or record_nothing:
            await self._record(actor, "audit.prune", "*", Outcome.OK, {**details, "pruned": pruned})
        return pruned
