"""The collector's statements (the ``GcIndex`` port): the lease, marking, candidates, and the claim-and-delete
transaction. Each is one portable statement; docs/operations.md explains why together they never take a live object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.sql.expression import Exists

from lfsd.core.gc import LEASE_NAME, Garbage
from lfsd.core.oid import Oid
from lfsd.db.database import Database
from lfsd.db.dialect import insert_ignore
from lfsd.db.objects import _chunks
from lfsd.db.tables import gc_lease, objects, repo_objects


def _linked() -> Exists:
    return exists(select(repo_objects.c.oid).where(repo_objects.c.oid == objects.c.oid))


def _garbage(cutoff: datetime) -> ColumnElement[bool]:
    """Seen unreferenced before ``cutoff``, not named by an upload batch since, and still held by no repository."""
    return and_(
        objects.c.unlinked_at.is_not(None),
        objects.c.unlinked_at < cutoff,
        or_(objects.c.touched_at.is_(None), objects.c.touched_at < cutoff),
        ~_linked(),
    )


class SqlGcIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(self, holder: str, now: datetime, lease: timedelta) -> bool:
        """One conditional UPDATE decides between collectors, on every database: free, expired, or already ours."""
        async with self._db.transaction() as conn:
            await conn.execute(insert_ignore(gc_lease, self._db.dialect), [{"name": LEASE_NAME}])
            taken = await conn.execute(
                update(gc_lease)
                .where(
                    gc_lease.c.name == LEASE_NAME,
                    or_(gc_lease.c.holder.is_(None), gc_lease.c.expires_at < now, gc_lease.c.holder == holder),
                )
                .values(holder=holder, expires_at=now + lease)
            )
        return bool(taken.rowcount)

    async def release(self, holder: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(gc_lease)
                .where(gc_lease.c.name == LEASE_NAME, gc_lease.c.holder == holder)
                .values(holder=None, expires_at=None)
            )

    async def mark(self, now: datetime) -> int:
        async with self._db.transaction() as conn:
            # A mark written while a link was being made (a race the mark may lose) is cleared at the next run.
            await conn.execute(
                update(objects).where(objects.c.unlinked_at.is_not(None), _linked()).values(unlinked_at=None)
            )
            marked = await conn.execute(
                update(objects).where(objects.c.unlinked_at.is_(None), ~_linked()).values(unlinked_at=now)
            )
        return int(marked.rowcount)

    async def count(self, cutoff: datetime) -> tuple[int, int]:
        query = select(func.count(), func.coalesce(func.sum(objects.c.size), 0)).where(_garbage(cutoff))
        async with self._db.transaction() as conn:
            found, size = (await conn.execute(query)).one()
        return int(found), int(size)

    async def page(self, cutoff: datetime, after: Oid | None, limit: int) -> list[Garbage]:
        query = select(objects.c.oid, objects.c.size).where(_garbage(cutoff)).order_by(objects.c.oid).limit(limit)
        if after is not None:
            query = query.where(objects.c.oid > str(after))
        async with self._db.transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [Garbage(Oid.parse(row.oid), int(row.size)) for row in rows]

    async def collect(
        self, claim: str, oids: Collection[Oid], cutoff: datetime, remove: Callable[[list[Oid]], Awaitable[None]]
    ) -> list[Garbage]:
        claimed: list[Garbage] = []
        # Unbounded: deleting a page of bodies on a slow store may take longer than a request's statement budget.
        async with self._db.transaction(bounded=False) as conn:
            for chunk in _chunks(sorted(oids)):
                # The claim: one conditional statement, which locks the rows it matches until the commit. A link of
                # the same oid waits for it (and then finds the row gone), or has cleared `unlinked_at` before it.
                await conn.execute(
                    update(objects).where(objects.c.oid.in_(chunk), _garbage(cutoff)).values(gc_claim=claim)
                )
                query = select(objects.c.oid, objects.c.size).where(
                    objects.c.oid.in_(chunk), objects.c.gc_claim == claim
                )
                claimed.extend(Garbage(Oid.parse(row.oid), int(row.size)) for row in await conn.execute(query))
            if claimed:
                await remove([g.oid for g in claimed])
                for chunk in _chunks(g.oid for g in claimed):
                    await conn.execute(objects.delete().where(objects.c.oid.in_(chunk), objects.c.gc_claim == claim))
        return claimed
