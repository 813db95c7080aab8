"""Repositories and per-repository grants."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Permission, Repo
from lfsd.core.errors import Conflict
from lfsd.core.repo import RepoPath
from lfsd.db.database import Database, utcnow
from lfsd.db.tables import grants, repos


class SqlRepoDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, path: RepoPath) -> Repo | None:
        query = select(repos.c.id, repos.c.path, repos.c.is_public, repos.c.locking_enabled).where(repos.c.path == path)
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Repo(id=row.id, path=RepoPath(row.path), is_public=row.is_public, locking_enabled=row.locking_enabled)

    async def create(self, path: RepoPath, *, is_public: bool) -> Repo:
        try:
            async with self._db.transaction() as conn:
                result = await conn.execute(
                    repos.insert().values(path=str(path), is_public=is_public, created_at=utcnow())
                )
        except IntegrityError:
            # Created concurrently (two first pushes at once): the existing repository is the one.
            existing = await self.find(path)
            if existing is None:
                raise Conflict(f"repository {path} could not be created") from None
            return existing
        (repo_id,) = result.inserted_primary_key or (None,)
        assert isinstance(repo_id, int)
        return Repo(id=repo_id, path=path, is_public=is_public)

    async def set_locking(self, repo: Repo, enabled: bool) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(repos.update().where(repos.c.id == repo.id).values(locking_enabled=enabled))

    async def grant_of(self, repo: Repo, user_id: int) -> Permission:
        query = select(grants.c.permission).where(grants.c.repo_id == repo.id, grants.c.user_id == user_id)
        async with self._db.transaction() as conn:
            level = (await conn.execute(query)).scalar_one_or_none()
        return Permission.NONE if level is None else Permission(level)

    async def set_grant(self, repo: Repo, user_id: int, permission: Permission) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(grants.delete().where(grants.c.repo_id == repo.id, grants.c.user_id == user_id))
            await conn.execute(grants.insert().values(repo_id=repo.id, user_id=user_id, permission=int(permission)))
