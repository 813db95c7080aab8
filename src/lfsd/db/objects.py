"""The object index: which repository holds which object, and each object's size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Identity, Permission
from lfsd.core.errors import NotFound
from lfsd.core.oid import Oid
from lfsd.db.database import Database, utcnow
from lfsd.db.dialect import insert_ignore
from lfsd.db.tables import grants, objects, repo_objects, repos

_IN_CHUNK = 500  # bound the number of bind parameters per statement on every database


def _chunks(oids: Iterable[Oid]) -> Iterator[list[str]]:
    batch: list[str] = []
    for oid in oids:
        batch.append(str(oid))
        if len(batch) == _IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


class SqlObjectIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def held_sizes(self, repo_id: int, oids: Iterable[Oid]) -> dict[Oid, int]:
        held = select(objects.c.oid, objects.c.size).join(repo_objects, repo_objects.c.oid == objects.c.oid)
        return await self._sizes(held.where(repo_objects.c.repo_id == repo_id), oids)

    async def readable_sizes(self, identity: Identity | None, oids: Iterable[Oid]) -> dict[Oid, int]:
        query = (
            select(objects.c.oid, objects.c.size)
            .join(repo_objects, repo_objects.c.oid == objects.c.oid)
            .join(repos, repos.c.id == repo_objects.c.repo_id)
            .distinct()
        )
        if identity is None:
            query = query.where(repos.c.is_public.is_(True))
        elif not identity.is_admin:
            query = query.outerjoin(
                grants, (grants.c.repo_id == repos.c.id) & (grants.c.user_id == identity.user_id)
            ).where(or_(repos.c.is_public.is_(True), grants.c.permission >= int(Permission.READ)))
        return await self._sizes(query, oids)

    async def _sizes(self, query: Select[tuple[str, int]], oids: Iterable[Oid]) -> dict[Oid, int]:
        """Run ``query`` restricted to ``oids``, in chunks that keep bind parameters bounded."""
        found: dict[Oid, int] = {}
        async with self._db.transaction() as conn:
            for chunk in _chunks(oids):
                for row in await conn.execute(query.where(objects.c.oid.in_(chunk))):
                    found[Oid(row.oid)] = int(row.size)
        return found

    async def link(self, repo_id: int, sizes: dict[Oid, int]) -> None:
        now = utcnow()
        object_rows = [{"oid": str(oid), "size": size, "created_at": now} for oid, size in sorted(sizes.items())]
        link_rows = [{"repo_id": repo_id, "oid": row["oid"], "created_at": now} for row in object_rows]
        try:
            async with self._db.transaction() as conn:
                await conn.execute(insert_ignore(objects, self._db.dialect), object_rows)
                await conn.execute(insert_ignore(repo_objects, self._db.dialect), link_rows)
        except IntegrityError:
            # The only foreign key that can fail here: the repository was deleted while a link was in use.
            raise NotFound("repository not found") from None
