"""The object index, whole: paged in oid order with every repository that holds each object, and unlinking."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import exists, func, insert, literal, select, update
from sqlalchemy.sql.expression import Exists

from lfsd.core.errors import NotFound
from lfsd.core.inventory import IndexedObject
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import Database, utcnow
from lfsd.db.objects import _chunks
from lfsd.db.tables import objects, repo_objects, repos


class SqlIndexInventory:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _held(self, repo: RepoPath | None) -> Exists:
        """Objects some repository (or ``repo``) holds; a row no repository holds is garbage, not an object."""
        links = select(repo_objects.c.oid).where(repo_objects.c.oid == objects.c.oid)
        if repo is not None:
            links = links.join(repos, repos.c.id == repo_objects.c.repo_id).where(repos.c.path == str(repo))
        return exists(links)

    async def count(self, repo: RepoPath | None = None) -> int:
        query = select(func.count()).select_from(objects).where(self._held(repo))
        async with self._db.transaction() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def page(self, after: Oid | None, limit: int, repo: RepoPath | None = None) -> list[IndexedObject]:
        query = select(objects.c.oid, objects.c.size).where(self._held(repo)).order_by(objects.c.oid).limit(limit)
        if after is not None:
            query = query.where(objects.c.oid > str(after))
        async with self._db.transaction() as conn:
            rows = (await conn.execute(query)).all()
            holders: dict[str, list[RepoPath]] = defaultdict(list)
            if rows:
                held_by = (
                    select(repo_objects.c.oid, repos.c.path)
                    .join(repos, repos.c.id == repo_objects.c.repo_id)
                    .where(repo_objects.c.oid.in_([row.oid for row in rows]))
                )
                for link in await conn.execute(held_by):
                    holders[link.oid].append(RepoPath(link.path))
        return [IndexedObject(Oid.parse(row.oid), int(row.size), tuple(sorted(holders[row.oid]))) for row in rows]

    async def unlink(self, oids: Collection[Oid]) -> int:
        removed = 0
        async with self._db.transaction() as conn:
            for chunk in _chunks(oids):
                result = await conn.execute(repo_objects.delete().where(repo_objects.c.oid.in_(chunk)))
                removed += result.rowcount
        return removed

    async def unlink_from(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        removed = 0
        async with self._db.transaction() as conn:
            repo_id = (await conn.execute(select(repos.c.id).where(repos.c.path == str(repo)))).scalar_one_or_none()
            if repo_id is None:
                raise NotFound(f"no repository {repo}")
            for chunk in _chunks(oids):
                result = await conn.execute(
                    repo_objects.delete().where(repo_objects.c.repo_id == repo_id, repo_objects.c.oid.in_(chunk))
                )
                removed += result.rowcount
            if removed:
                # Links issued before now re-check their object against the index (see AccessControl.admit_link).
                await conn.execute(update(repos).where(repos.c.id == repo_id).values(objects_removed_at=utcnow()))
        return removed

    async def linked_before(self, repo: RepoPath, cutoff: datetime, after: Oid | None, limit: int) -> list[Oid]:
        query = (
            select(repo_objects.c.oid)
            .join(repos, repos.c.id == repo_objects.c.repo_id)
            .where(repos.c.path == str(repo), repo_objects.c.created_at < cutoff)
            .order_by(repo_objects.c.oid)
            .limit(limit)
        )
        if after is not None:
            query = query.where(repo_objects.c.oid > str(after))
        async with self._db.transaction() as conn:
            return [Oid.parse(oid) for oid in (await conn.execute(query)).scalars()]

    async def relink(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        linked = 0
        async with self._db.transaction() as conn:
            repo_id = (await conn.execute(select(repos.c.id).where(repos.c.path == str(repo)))).scalar_one_or_none()
            if repo_id is None:
                raise NotFound(f"no repository {repo}")
            for chunk in _chunks(oids):
                # Only objects still indexed, and not linked meanwhile: one statement, so a racing link is no error.
                held = select(repo_objects.c.oid).where(
                    repo_objects.c.repo_id == repo_id, repo_objects.c.oid == objects.c.oid
                )
                rows = select(
                    literal(repo_id, repo_objects.c.repo_id.type),
                    objects.c.oid,
                    literal(utcnow(), repo_objects.c.created_at.type),
                ).where(objects.c.oid.in_(chunk), ~exists(held))
                result = await conn.execute(insert(repo_objects).from_select(["repo_id", "oid", "created_at"], rows))
                linked += result.rowcount
        return linked
