"""Web UI sessions in SQL: every replica reads the same rows, so no sticky routing is needed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from lfsd.core.auth import Identity
from lfsd.core.sessions import Session
from lfsd.db.database import Database
from lfsd.db.tables import ui_sessions, users


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, digest: str, user_id: int, csrf: str, created_at: datetime, expires_at: datetime) -> None:
        values = {
            "digest": digest,
            "user_id": user_id,
            "csrf": csrf,
            "created_at": created_at,
            "expires_at": expires_at,
            "last_seen_at": created_at,
        }
        async with self._db.transaction() as conn:
            await conn.execute(ui_sessions.insert().values(**values))

    async def find(self, digest: str, now: datetime) -> Session | None:
        # One indexed read with the user's row: a disabled or deleted user has no session from this moment on.
        query = (
            select(
                users.c.id,
                users.c.name,
                users.c.is_admin,
                ui_sessions.c.csrf,
                ui_sessions.c.expires_at,
                ui_sessions.c.last_seen_at,
            )
            .join(users, users.c.id == ui_sessions.c.user_id)
            .where(
                ui_sessions.c.digest == digest,
                ui_sessions.c.expires_at > now,
                users.c.disabled.is_(False),
                users.c.deleted_at.is_(None),
            )
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        identity = Identity(user_id=row.id, name=row.name, is_admin=row.is_admin)
        return Session(identity, row.csrf, row.expires_at, row.last_seen_at)

    async def touch(self, digest: str, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(update(ui_sessions).where(ui_sessions.c.digest == digest).values(last_seen_at=now))

    async def delete(self, digest: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(ui_sessions.delete().where(ui_sessions.c.digest == digest))

    async def purge_expired(self, now: datetime) -> int:
        async with self._db.transaction() as conn:
            result = await conn.execute(ui_sessions.delete().where(ui_sessions.c.expires_at <= now))
        return int(result.rowcount)
