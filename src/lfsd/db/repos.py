"""Repositories and per-repository grants."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Identity, Permission, Repo, Standing
from lfsd.core.directory import GrantInfo, RepoInfo
from lfsd.core.errors import Conflict
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope
from lfsd.db.database import Database, as_utc, utcnow
from lfsd.db.sqlite_trip import SqliteHotPath
from lfsd.db.tables import grants, locks, repo_objects, repo_usage, repos, tokens, users
from lfsd.db.usage import UsageCounters

# Built once, its values bind parameters: every batch and every transfer without a link asks it.
_REPO_WITH_GRANT = (
    select(repos.c.id, repos.c.path, repos.c.is_public, repos.c.locking_enabled, grants.c.permission)
    .select_from(repos)
    .outerjoin(grants, and_(grants.c.repo_id == repos.c.id, grants.c.user_id == bindparam("user_id")))
    .where(repos.c.path == bindparam("path"))
)


class SqlRepoDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._hot = SqliteHotPath(db) if db.dialect == "sqlite" else None
        self._usage = UsageCounters(db.dialect)  # the counters of created, renamed and deleted repositories

    async def find(self, path: RepoPath) -> Repo | None:
        repo, _ = await self.find_with_grant(path, 0)
        return repo

    async def find_with_grant(self, path: RepoPath, user_id: int) -> tuple[Repo | None, Permission]:
        """The repository and ``user_id``'s grant on it, in one query.

        One statement whether or not the repository exists, so a refusal takes as long for a missing repository as
        for a private one (user id 0 matches no grant).
        """
        parameters: dict[str, object] = {"path": str(path), "user_id": user_id}
        if self._hot is not None:  # SQLite: one trip to the driver's thread (db/sqlite_trip.py, issue 17)
            found = await self._hot.fetch("repo_with_grant", _REPO_WITH_GRANT, parameters)
            row = found[0] if found else None
        else:
            async with self._db.transaction() as conn:
                row = (await conn.execute(_REPO_WITH_GRANT, parameters)).first()
        if row is None:
            return None, Permission.NONE
        repo_id, repo_path, is_public, locking_enabled, permission = row
        repo = Repo(
            id=repo_id, path=RepoPath(repo_path), is_public=bool(is_public), locking_enabled=bool(locking_enabled)
        )
        return repo, Permission.NONE if permission is None else Permission(permission)

    async def create(self, path: RepoPath, *, is_public: bool) -> Repo:
        try:
            async with self._db.transaction() as conn:
                result = await conn.execute(
                    repos.insert().values(path=str(path), is_public=is_public, created_at=utcnow())
                )
                (new_id,) = result.inserted_primary_key or (None,)
                assert isinstance(new_id, int)
                await conn.run_sync(self._usage.created, new_id, path.owner)  # its counters start at 0
        except IntegrityError:
            # Created concurrently (two first pushes at once): the existing repository is the one.
            existing = await self.find(path)
            if existing is None:
                raise Conflict(f"repository {path} could not be created") from None
            return existing
        return Repo(id=new_id, path=path, is_public=is_public)

    async def set_locking(self, repo: Repo, enabled: bool) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(repos.update().where(repos.c.id == repo.id).values(locking_enabled=enabled))

    async def set_public(self, repo: Repo, public: bool) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(repos.update().where(repos.c.id == repo.id).values(is_public=public))

    async def grant_of(self, repo: Repo, user_id: int) -> Permission:
        query = select(grants.c.permission).where(grants.c.repo_id == repo.id, grants.c.user_id == user_id)
        async with self._db.transaction() as conn:
            level = (await conn.execute(query)).scalar_one_or_none()
        return Permission.NONE if level is None else Permission(level)

    async def set_grant(self, repo: Repo, user_id: int, permission: Permission) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(grants.delete().where(grants.c.repo_id == repo.id, grants.c.user_id == user_id))
            await conn.execute(grants.insert().values(repo_id=repo.id, user_id=user_id, permission=int(permission)))

    async def remove_grant(self, repo: Repo, user_id: int) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(grants.delete().where(grants.c.repo_id == repo.id, grants.c.user_id == user_id))
        return bool(result.rowcount)

    async def grants(
        self,
        *,
        repo: Repo | None = None,
        user_id: int | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[GrantInfo]:
        """By repository path and user name; ``after`` (a path and a name) and ``limit`` give one page."""
        query = (
            select(repos.c.path, users.c.name, grants.c.permission)
            .select_from(grants)
            .join(repos, repos.c.id == grants.c.repo_id)
            .join(users, users.c.id == grants.c.user_id)
            .order_by(repos.c.path, users.c.name)
            .limit(limit)
        )
        if after is not None:
            path, name = after
            query = query.where(or_(repos.c.path > path, and_(repos.c.path == path, users.c.name > name)))
        if repo is not None:
            query = query.where(grants.c.repo_id == repo.id)
        if user_id is not None:
            query = query.where(grants.c.user_id == user_id)
        async with self._db.transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [GrantInfo(RepoPath(row.path), row.name, Permission(row.permission)) for row in rows]

    async def list_repos(self, *, after: RepoPath | None = None, limit: int | None = None) -> list[RepoInfo]:
        """By path; ``after`` and ``limit`` give one page."""
        return await self._infos(None, after=after, limit=limit)

    async def repo_info(self, path: RepoPath) -> RepoInfo | None:
        found = await self._infos(path)
        return found[0] if found else None

    async def _infos(
        self, path: RepoPath | None, *, after: RepoPath | None = None, limit: int | None = None
    ) -> list[RepoInfo]:
        """With the number and bytes of the objects each holds and when it last received one: the usage counters
        kept with every link (db/usage.py), not a scan of the index; a page of them in path order."""
        query = (
            select(
                repos.c.id,
                repos.c.path,
                repos.c.is_public,
                repos.c.locking_enabled,
                repos.c.created_at,
                repo_usage.c.objects.label("held"),
                repo_usage.c.bytes,
                repo_usage.c.last_push_at.label("last_push"),
            )
            .select_from(repos)
            .outerjoin(repo_usage, repo_usage.c.repo_id == repos.c.id)
            .order_by(repos.c.path)
            .limit(limit)
        )
        if after is not None:
            query = query.where(repos.c.path > str(after))
        if path is not None:
            query = query.where(repos.c.path == str(path))
        async with self._db.transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RepoInfo(
                repo=Repo(row.id, RepoPath(row.path), row.is_public, row.locking_enabled),
                created_at=row.created_at,
                objects=int(row.held or 0),
                bytes=int(row.bytes or 0),
                # SQLite and MySQL hand back naive UTC (or text in SQLite) for some expressions.
                last_push=as_utc(row.last_push),
            )
            for row in rows
        ]

    async def rename(self, repo: Repo, new_path: RepoPath) -> None:
        """Objects, grants and locks refer to the repository by id: they follow; the old path names nothing."""
        try:
            async with self._db.transaction() as conn:
                await conn.run_sync(self._usage.move_owner, repo.id, str(new_path))
                await conn.execute(repos.update().where(repos.c.id == repo.id).values(path=str(new_path)))
        except IntegrityError:
            raise Conflict(f"repository {new_path} already exists") from None

    async def delete(self, repo: Repo) -> None:
        """Grants, locks and links to objects go with it (foreign keys cascade, said here too for databases that
        were created without them); the objects' rows and bodies stay for the garbage collector."""
        async with self._db.transaction() as conn:
            await conn.run_sync(self._usage.forget_repo, repo.id)  # its counters leave its owner's
            for table in (grants, locks, repo_objects):
                await conn.execute(table.delete().where(table.c.repo_id == repo.id))
            await conn.execute(repos.delete().where(repos.c.id == repo.id))

    async def standing(self, repo_id: int, user_id: int, token_id: int) -> Standing | None:
        """Whether a transfer link still holds, in one indexed query: the repository (None once deleted), the
        user (enabled?), the link's token (revoked?) and the user's grant. Ids 0 match nothing."""
        query = (
            select(
                repos.c.id,
                repos.c.path,
                repos.c.is_public,
                repos.c.locking_enabled,
                repos.c.objects_removed_at,
                users.c.id.label("user_id"),
                users.c.name,
                users.c.is_admin,
                users.c.disabled,
                tokens.c.id.label("token_id"),
                tokens.c.revoked_at,
                tokens.c.expires_at,
                tokens.c.scope,
                grants.c.permission,
            )
            .select_from(repos)
            .outerjoin(users, users.c.id == user_id)
            .outerjoin(tokens, and_(tokens.c.id == token_id, tokens.c.user_id == users.c.id))
            .outerjoin(grants, and_(grants.c.repo_id == repos.c.id, grants.c.user_id == users.c.id))
            .where(repos.c.id == repo_id)
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        repo = Repo(id=row.id, path=RepoPath(row.path), is_public=row.is_public, locking_enabled=row.locking_enabled)
        enabled = row.user_id is not None and not row.disabled
        ceiling = Permission.READ if row.scope == Scope.READ else Permission.ADMIN
        user = Identity(row.user_id, row.name, row.is_admin, token_id, ceiling) if enabled else None
        active = row.revoked_at is None and (row.expires_at is None or row.expires_at > utcnow())
        return Standing(
            repo=repo,
            user=user,
            user_ok=user_id == 0 or enabled,
            token_ok=token_id == 0 or (row.token_id is not None and active),
            grant=Permission.NONE if row.permission is None else Permission(row.permission),
            objects_removed_at=row.objects_removed_at,
        )
