"""A repository's objects, paged by keyset over ``ix_repo_objects_repo_created`` / ``ix_repo_objects_repo_size``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from lfsd.core.catalog import ObjectEntry, ObjectQuery, ObjectSort
from lfsd.db.database import Database
from lfsd.db.tables import repo_objects, users

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlObjectCatalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, repo_id: int, query: ObjectQuery) -> list[ObjectEntry]:
        c = repo_objects.c
        column = c.size if query.sort is ObjectSort.SIZE else c.created_at
        statement = (
            select(c.oid, c.size, c.created_at, users.c.name.label("uploader"))
            .select_from(repo_objects.outerjoin(users, users.c.id == c.uploader_id))
            .where(c.repo_id == repo_id)
        )
        if query.after is not None:
            key: object = query.after.key
            if query.sort is ObjectSort.DATE:
                key = _EPOCH + timedelta(microseconds=query.after.key)
            oid = query.after.oid
            if query.descending:
                statement = statement.where(or_(column < key, and_(column == key, c.oid < oid)))
            else:
                statement = statement.where(or_(column > key, and_(column == key, c.oid > oid)))
        if query.descending:
            statement = statement.order_by(column.desc(), c.oid.desc())
        else:
            statement = statement.order_by(column.asc(), c.oid.asc())
        async with self._db.transaction() as conn:
            rows = (await conn.execute(statement.limit(query.limit))).all()
        return [ObjectEntry(row.oid, int(row.size or 0), row.created_at, row.uploader) for row in rows]
