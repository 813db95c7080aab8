"""The object index, whole: paged in oid order with every repository that holds each object, and unlinking."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.sql.expression import Exists

from lfsd.core.errors import NotFound
from lfsd.core.inventory import IndexedObject
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import Database, utcnow
from lfsd.db.dialect import insert_ignore
from lfsd.db.objects import _chunks, unreferenced_rows
from lfsd.db.tables import objects, repo_objects, repos
from lfsd.db.usage import Delta, UsageCounters, retry_deadlocks


class SqlIndexInventory:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._usage = UsageCounters(db.dialect)

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
        return await retry_deadlocks(lambda: self._unlink(oids))

    async def adopt(self, sizes: Mapping[Oid, int]) -> int:
        statement = insert_ignore(objects, self._db.dialect)

        async def insert() -> int:
            made = 0
            async with self._db.transaction() as conn:
                for chunk in _chunks(sizes):
                    known = set((await conn.execute(select(objects.c.oid).where(objects.c.oid.in_(chunk)))).scalars())
                    new = {Oid(oid): sizes[Oid(oid)] for oid in chunk if oid not in known}
                    if new:
                        # Ignoring still: a link may insert the same oid between the read and this statement.
                        await conn.execute(statement, unreferenced_rows(new, utcnow()))
                        made += len(new)
            return made

        return await retry_deadlocks(insert) if sizes else 0

    async def _unlink(self, oids: Collection[Oid]) -> int:
        """Unlink ``oids`` from every repository, each repository's counters with its links (db/usage.py): the
        holders are found, their usage rows locked, their links removed; again until none is left (a link made
        meanwhile by a repository not yet locked is found by the next round).

        The holders are read with a shared lock, which reads the latest committed rows: a plain read would see, on
        MariaDB, the snapshot of the transaction's first read (REPEATABLE READ), so the next round would miss a
        link committed after it. No DISTINCT: PostgreSQL takes no row lock with it. That lock is taken before the
        usage rows, against the order of db/usage.py: a link or unlink waiting the other way round makes a deadlock,
        whose victim is rolled back whole and run again (``retry_deadlocks``, here and in the link)."""
        removed = 0
        wanted = sorted(str(oid) for oid in oids)
        async with self._db.transaction() as conn:
            while True:
                holders: set[int] = set()
                for chunk in _chunks(Oid(oid) for oid in wanted):
                    query = (
                        select(repo_objects.c.repo_id).where(repo_objects.c.oid.in_(chunk)).with_for_update(read=True)
                    )
                    holders.update(row.repo_id for row in await conn.execute(query))
                if not holders:
                    return removed
                counted = await conn.run_sync(self._usage.lock, holders)
                for repo in counted.values():
                    removed += await conn.run_sync(self._usage.unlink, repo, wanted, utcnow())

    async def unlink_from(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        return (await retry_deadlocks(lambda: self._unlink_from(repo, oids)))[1]

    async def _unlink_from(
        self, repo: RepoPath, oids: Collection[Oid], stale_before: datetime | None = None
    ) -> tuple[list[str], int]:
        """Unlink ``oids`` from ``repo`` only, its counters with them; with ``stale_before``, only those still linked
        and confirmed before it (``linked_before``), read with the rows locked. The oids asked for, and how many
        links went."""
        async with self._db.transaction() as conn:
            repo_id = (await conn.execute(select(repos.c.id).where(repos.c.path == str(repo)))).scalar_one_or_none()
            if repo_id is None:
                raise NotFound(f"no repository {repo}")
            counted = await conn.run_sync(self._usage.lock, [repo_id])
            wanted = [str(oid) for oid in oids]
            if stale_before is not None:
                # An upload batch's confirmation (``SqlObjectIndex.confirm``) either came first and keeps the link,
                # or waits for these locks and then finds it gone, and the batch asks for an upload.
                still_stale: list[str] = []
                for chunk in _chunks(oids):
                    query = (
                        select(repo_objects.c.oid)
                        .where(repo_objects.c.repo_id == repo_id, repo_objects.c.oid.in_(chunk), _stale(stale_before))
                        .with_for_update()
                    )
                    still_stale += [row.oid for row in await conn.execute(query)]
                wanted = sorted(still_stale)
            removed = await conn.run_sync(self._usage.unlink, counted[repo_id], wanted, utcnow()) if wanted else 0
            if removed:
                # Links issued before now re-check their object against the index (see AccessControl.admit_link).
                await conn.execute(update(repos).where(repos.c.id == repo_id).values(objects_removed_at=utcnow()))
        return wanted, removed

    async def linked_before(self, repo: RepoPath, cutoff: datetime, after: Oid | None, limit: int) -> list[Oid]:
        query = (
            select(repo_objects.c.oid)
            .join(repos, repos.c.id == repo_objects.c.repo_id)
            .where(repos.c.path == str(repo), _stale(cutoff))
            .order_by(repo_objects.c.oid)
            .limit(limit)
        )
        if after is not None:
            query = query.where(repo_objects.c.oid > str(after))
        async with self._db.transaction() as conn:
            return [Oid.parse(oid) for oid in (await conn.execute(query)).scalars()]

    async def unlink_stale(self, repo: RepoPath, oids: Collection[Oid], cutoff: datetime) -> list[Oid]:
        removed, _ = await retry_deadlocks(lambda: self._unlink_from(repo, oids, stale_before=cutoff))
        return [Oid(oid) for oid in removed]

    async def relink(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        return await retry_deadlocks(lambda: self._relink(repo, oids))

    async def _relink(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        """Link back those of ``oids`` still indexed and not linked meanwhile, counters with them (db/usage.py)."""
        now = utcnow()
        async with self._db.transaction() as conn:
            # A locking read, so that the plain reads after the usage lock see every link committed before it.
            find = select(repos.c.id).where(repos.c.path == str(repo)).with_for_update(read=True)
            repo_id = (await conn.execute(find)).scalar_one_or_none()
            if repo_id is None:
                raise NotFound(f"no repository {repo}")
            counted = await conn.run_sync(self._usage.lock, [repo_id])
            wanted = {str(oid) for oid in oids}
            already = {oid for _, oid in await conn.run_sync(self._usage.held, [repo_id], wanted)}
            sizes: dict[str, int] = {}
            for chunk in _chunks(Oid(oid) for oid in sorted(wanted - already)):
                # Locked as a link locks them (db/objects.py): a collector deleting one holds its row until it commits,
                # and then the row is gone; a row it has claimed is not taken back. The bytes of the rest are there:
                # they were unlinked moments ago, well inside the collector's grace period.
                indexed = select(objects.c.oid, objects.c.size).where(
                    objects.c.oid.in_(chunk), objects.c.gc_claim.is_(None)
                )
                for row in await conn.execute(indexed.with_for_update()):
                    sizes[row.oid] = int(row.size)
            if not sizes:
                return 0
            for chunk in _chunks(Oid(oid) for oid in sorted(sizes)):
                await conn.execute(
                    update(objects).where(objects.c.oid.in_(chunk)).values(unlinked_at=None, touched_at=None)
                )
            rows = [
                {"repo_id": repo_id, "oid": oid, "created_at": now, "size": size} for oid, size in sorted(sizes.items())
            ]
            await conn.execute(insert_ignore(repo_objects, self._db.dialect), rows)
            delta = Delta()
            for size in sizes.values():
                delta.add(size)
            await conn.run_sync(self._usage.apply, counted, {repo_id: delta}, now)
        return len(sizes)


def _stale(cutoff: datetime) -> ColumnElement[bool]:
    """Links made, and last confirmed by an upload batch, before ``cutoff``: no pointer to them is on its way."""
    return (repo_objects.c.created_at < cutoff) & or_(
        repo_objects.c.confirmed_at.is_(None), repo_objects.c.confirmed_at < cutoff
    )
