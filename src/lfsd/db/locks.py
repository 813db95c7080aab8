"""Locks in SQL. The unique key on (repository, path) is the arbiter between concurrent creators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, Select, func, select
from sqlalchemy.exc import IntegrityError

from lfsd.core.errors import Conflict
from lfsd.core.locks import Lock, LockExists, LockPath, RefName, path_key
from lfsd.db.database import Database, utcnow
from lfsd.db.tables import locks, users

_COLUMNS = (locks.c.id, locks.c.path, locks.c.locked_at, locks.c.owner_id, users.c.name)


def _select() -> Select[tuple[int, str, datetime, int, str]]:
    return select(*_COLUMNS).join(users, users.c.id == locks.c.owner_id)


def _lock(row: Row[tuple[int, str, datetime, int, str]]) -> Lock:
    return Lock(id=row.id, path=row.path, locked_at=row.locked_at, owner_id=row.owner_id, owner_name=row.name)


class SqlLockRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, repo_id: int, path: LockPath, owner_id: int, ref: RefName | None) -> Lock:
        key = path_key(path)
        # Second precision, as the wire format shows it; MySQL's DATETIME would drop the fraction anyway.
        now = utcnow().replace(microsecond=0)
        try:
            async with self._db.transaction() as conn:
                result = await conn.execute(
                    locks.insert().values(
                        repo_id=repo_id, path=path, path_key=key, owner_id=owner_id, ref=ref, locked_at=now
                    )
                )
                (lock_id,) = result.inserted_primary_key or (None,)
                row = (await conn.execute(_select().where(locks.c.id == lock_id))).one()
        except IntegrityError:
            async with self._db.transaction() as conn:
                query = _select().where(locks.c.repo_id == repo_id, locks.c.path_key == key)
                existing = (await conn.execute(query)).first()
            if existing is None:
                # The winner was unlocked between our insert and our read: a true conflict all the same.
                raise Conflict("the path was locked and unlocked concurrently; try again") from None
            raise LockExists(_lock(existing)) from None
        return _lock(row)

    async def get(self, repo_id: int, lock_id: int) -> Lock | None:
        async with self._db.transaction() as conn:
            row = (await conn.execute(_select().where(locks.c.repo_id == repo_id, locks.c.id == lock_id))).first()
        return None if row is None else _lock(row)

    async def page(
        self, repo_id: int, *, after_id: int, limit: int, path: LockPath | None = None, lock_id: int | None = None
    ) -> tuple[list[Lock], bool]:
        query = _select().where(locks.c.repo_id == repo_id, locks.c.id > after_id)
        if path is not None:
            query = query.where(locks.c.path_key == path_key(path), locks.c.path == path)
        if lock_id is not None:
            query = query.where(locks.c.id == lock_id)
        async with self._db.transaction() as conn:
            rows = (await conn.execute(query.order_by(locks.c.id).limit(limit + 1))).all()
        return [_lock(row) for row in rows[:limit]], len(rows) > limit

    async def delete(self, repo_id: int, lock_id: int, owner_id: int | None) -> Lock | None:
        async with self._db.transaction() as conn:
            row = (await conn.execute(_select().where(locks.c.repo_id == repo_id, locks.c.id == lock_id))).first()
            if row is None:
                return None
            condition = (locks.c.id == lock_id) & (locks.c.repo_id == repo_id)
            if owner_id is not None:
                condition &= locks.c.owner_id == owner_id
            result = await conn.execute(locks.delete().where(condition))
        if result.rowcount == 0:
            return None
        return _lock(row)

    async def count(self) -> int:
        async with self._db.transaction() as conn:
            return int((await conn.execute(select(func.count()).select_from(locks))).scalar_one())
