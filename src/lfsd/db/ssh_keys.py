"""SSH public keys: registered per user, found by fingerprint when sshd (or the embedded server) asks, and turned
into the user they authenticate, which must be enabled at that moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Identity
from lfsd.core.errors import Conflict
from lfsd.core.sshkeys import PublicKey, SshKeyInfo, fingerprint_digest, fingerprint_of_digest
from lfsd.db.database import Database, utcnow
from lfsd.db.tables import ssh_keys, users

# As for tokens: last use is kept to the minute, one write a minute per key, not one per session.
LAST_USE_PRECISION = timedelta(minutes=1)

_COLUMNS = (
    ssh_keys.c.id,
    ssh_keys.c.user_id,
    users.c.name,
    ssh_keys.c.key_type,
    ssh_keys.c.fingerprint,
    ssh_keys.c.label,
    ssh_keys.c.created_at,
    ssh_keys.c.last_used_at,
)


def _info(row: Any) -> SshKeyInfo:  # a row of _COLUMNS
    return SshKeyInfo(
        id=row.id,
        user_id=row.user_id,
        user_name=row.name,
        key_type=row.key_type,
        fingerprint=fingerprint_of_digest(row.fingerprint),
        label=row.label,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _usable() -> tuple[Any, ...]:
    """The key's user is enabled and not deleted: a disabled user's keys stop at once."""
    return (users.c.disabled.is_(False), users.c.deleted_at.is_(None))


class SqlSshKeys:
    """Implements ``core.sshkeys.SshKeyAdmin`` and the lookups of the SSH front ends."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: int, key: PublicKey, label: str | None) -> int:
        values = {
            "user_id": user_id,
            "key_type": key.key_type,
            "public_key": key.base64,
            "fingerprint": fingerprint_digest(key.blob),
            "label": label,
            "created_at": utcnow(),
        }
        try:
            async with self._db.transaction() as conn:
                result = await conn.execute(ssh_keys.insert().values(**values))
        except IntegrityError:
            raise Conflict(f"the SSH key {key.fingerprint} is already registered") from None
        (key_id,) = result.inserted_primary_key or (None,)
        assert isinstance(key_id, int)
        return key_id

    async def keys_of(self, user_id: int) -> list[SshKeyInfo]:
        query = (
            select(*_COLUMNS)
            .join(users, users.c.id == ssh_keys.c.user_id)
            .where(ssh_keys.c.user_id == user_id)
            .order_by(ssh_keys.c.id)
        )
        async with self._db.transaction() as conn:
            return [_info(row) for row in (await conn.execute(query)).all()]

    async def key_info(self, key_id: int) -> SshKeyInfo | None:
        query = select(*_COLUMNS).join(users, users.c.id == ssh_keys.c.user_id).where(ssh_keys.c.id == key_id)
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _info(row)

    async def remove(self, key_id: int) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(ssh_keys.delete().where(ssh_keys.c.id == key_id))
        return bool(result.rowcount)

    async def login_key(self, key: PublicKey) -> int | None:
        """The id of ``key`` when it is registered to a usable user (type and blob both match), else None."""
        query = (
            select(ssh_keys.c.id, ssh_keys.c.key_type, ssh_keys.c.public_key)
            .join(users, users.c.id == ssh_keys.c.user_id)
            .where(ssh_keys.c.fingerprint == fingerprint_digest(key.blob), *_usable())
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.key_type != key.key_type or row.public_key != key.base64:
            return None
        assert isinstance(row.id, int)
        return row.id

    async def identity_for_key(self, key_id: int) -> Identity | None:
        """The usable user that key ``key_id`` authenticates, now; its last use is written at most once a minute."""
        query = (
            select(users.c.id, users.c.name, users.c.is_admin, ssh_keys.c.last_used_at)
            .join(users, users.c.id == ssh_keys.c.user_id)
            .where(ssh_keys.c.id == key_id, *_usable())
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        now = utcnow()
        if row.last_used_at is None or row.last_used_at < now - LAST_USE_PRECISION:
            await self._touch(key_id, row.id, now)
        return Identity(user_id=row.id, name=row.name, is_admin=row.is_admin)

    async def _touch(self, key_id: int, user_id: int, now: datetime) -> None:
        stale = now - LAST_USE_PRECISION
        async with self._db.transaction() as conn:
            await conn.execute(
                update(ssh_keys)
                .where(ssh_keys.c.id == key_id, or_(ssh_keys.c.last_used_at.is_(None), ssh_keys.c.last_used_at < stale))
                .values(last_used_at=now)
            )
            await conn.execute(update(users).where(users.c.id == user_id).values(last_active_at=now))
