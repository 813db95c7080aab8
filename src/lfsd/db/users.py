"""Users and personal access tokens."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Identity, Permission
from lfsd.core.directory import UserInfo
from lfsd.core.errors import Conflict, NotFound
from lfsd.core.login import PasswordRecord
from lfsd.core.names import MAX_USER_NAME_LENGTH
from lfsd.core.ports import PasswordHasher
from lfsd.core.tokens import Scope, new_token, token_digest
from lfsd.db.database import Database, as_utc, utcnow
from lfsd.db.sqlite_trip import SqliteHotPath
from lfsd.db.tables import UtcDateTime, grants, ssh_keys, tokens, users

# Last use and last activity are kept to the minute: one write a minute per token, not one per request.
LAST_USE_PRECISION = timedelta(minutes=1)


# Built once, its values bind parameters: every request with a token asks it.
_TOKEN_IDENTITY = (
    select(
        users.c.id,
        users.c.name,
        users.c.is_admin,
        tokens.c.id.label("token_id"),
        tokens.c.digest,
        tokens.c.scope,
        tokens.c.last_used_at,
    )
    .join(tokens, tokens.c.user_id == users.c.id)
    .where(
        tokens.c.digest == bindparam("digest"),
        tokens.c.revoked_at.is_(None),
        or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > bindparam("now", type_=UtcDateTime())),
        users.c.disabled.is_(False),
    )
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    is_admin: bool
    disabled: bool


class SqlUserDirectory:
    def __init__(self, db: Database, passwords: PasswordHasher) -> None:
        self._db = db
        self.passwords = passwords
        self._hot = SqliteHotPath(db) if db.dialect == "sqlite" else None

    async def identity_for_token(self, token: str) -> Identity | None:
        """The enabled user of an active (not revoked, not expired) token; its last use and the user's last
        activity are written at most once a minute per token, so a busy token costs one read per request (on
        SQLite one trip to the driver's thread, db/sqlite_trip.py: every batch asks it, issue 17)."""
        digest = token_digest(token)
        now = utcnow()
        parameters: dict[str, object] = {"digest": digest, "now": now}
        if self._hot is not None:
            found = await self._hot.fetch("token_identity", _TOKEN_IDENTITY, parameters)
            row = found[0] if found else None
        else:
            async with self._db.transaction() as conn:
                row = (await conn.execute(_TOKEN_IDENTITY, parameters)).first()
        if row is None:
            return None
        user_id, name, is_admin, token_id, stored_digest, scope, last_used = row
        if not hmac.compare_digest(stored_digest, digest):
            return None
        last_used_at = as_utc(last_used)
        if last_used_at is None or last_used_at < now - LAST_USE_PRECISION:
            await self._touch(user_id, token_id, now)
        ceiling = Permission.READ if Scope(scope) is Scope.READ else Permission.ADMIN
        return Identity(
            user_id=user_id,
            name=name,
            is_admin=bool(is_admin),
            token_id=token_id,
            ceiling=ceiling,
            scope=Scope(scope),
        )

    async def _touch(self, user_id: int, token_id: int, now: datetime) -> None:
        stale = now - LAST_USE_PRECISION
        async with self._db.transaction() as conn:
            await conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, or_(tokens.c.last_used_at.is_(None), tokens.c.last_used_at < stale))
                .values(last_used_at=now)
            )
            await conn.execute(update(users).where(users.c.id == user_id).values(last_active_at=now))

    async def password_record(self, name: str) -> PasswordRecord | None:
        query = select(users.c.id, users.c.name, users.c.is_admin, users.c.password_hash).where(
            users.c.name == name,
            users.c.disabled.is_(False),
            users.c.deleted_at.is_(None),
            users.c.password_hash.is_not(None),
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return PasswordRecord(Identity(user_id=row.id, name=row.name, is_admin=row.is_admin), row.password_hash)

    async def identity_for_password(self, name: str, password: str) -> Identity | None:
        """A direct check (no throttle, no cache), for the command line; servers go through ``PasswordLogin``."""
        record = await self.password_record(name)
        if not await self.passwords.verify(record.password_hash if record else None, password) or record is None:
            return None
        return record.identity

    async def add(self, name: str, *, is_admin: bool, password: str | None) -> UserRecord:
        password_hash = self.passwords.hash(password) if password else None
        try:
            async with self._db.transaction() as conn:
                result = await conn.execute(
                    users.insert().values(
                        name=name,
                        password_hash=password_hash,
                        is_admin=is_admin,
                        disabled=False,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
        (user_id,) = result.inserted_primary_key or (None,)
        assert isinstance(user_id, int)
        return UserRecord(id=user_id, name=name, is_admin=is_admin, disabled=False)

    async def find(self, name: str) -> UserRecord | None:
        query = select(users.c.id, users.c.name, users.c.is_admin, users.c.disabled).where(
            users.c.name == name, users.c.deleted_at.is_(None)
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else UserRecord(row.id, row.name, row.is_admin, row.disabled)

    async def require(self, name: str) -> UserRecord:
        user = await self.find(name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def count(self) -> int:
        async with self._db.transaction() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    async def set_disabled(self, name: str, disabled: bool) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(users).where(users.c.name == name, users.c.deleted_at.is_(None)).values(disabled=disabled)
            )
        if result.rowcount == 0:
            raise NotFound(f"no user named {name!r}")

    async def set_password(self, name: str, password: str | None) -> None:
        """A new password (None: none). Hashed first, off the database transaction; remembered logins of the old
        one stop matching at once, as the stored hash they were checked against is gone."""
        password_hash = self.passwords.hash(password) if password else None
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.name == name, users.c.deleted_at.is_(None))
                .values(password_hash=password_hash)
            )
        if result.rowcount == 0:
            raise NotFound(f"no user named {name!r}")

    async def create_token(self, name: str, token: str | None = None) -> str:
        """A new token for user ``name`` (``token``, when one is given); only its digest is stored."""
        user = await self.require(name)
        token = token or new_token()
        async with self._db.transaction() as conn:
            await conn.execute(tokens.insert().values(user_id=user.id, digest=token_digest(token), created_at=utcnow()))
        return token

    async def revoke_token(self, token: str) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.digest == token_digest(token), tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        if result.rowcount == 0:
            raise NotFound("no such active token")

    async def set_admin(self, name: str, is_admin: bool) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(users).where(users.c.name == name, users.c.deleted_at.is_(None)).values(is_admin=is_admin)
            )
        if result.rowcount == 0:
            raise NotFound(f"no user named {name!r}")

    async def list_users(self, *, after: str | None = None, limit: int | None = None) -> list[UserInfo]:
        """By name; with ``after`` and ``limit``, one page of them (keyset paging: stable under changes)."""
        query = select(*_INFO).where(users.c.deleted_at.is_(None)).order_by(users.c.name).limit(limit)
        if after is not None:
            query = query.where(users.c.name > after)
        async with self._db.transaction() as conn:
            return [_info(row) for row in (await conn.execute(query)).all()]

    async def user_info(self, name: str) -> UserInfo | None:
        query = select(*_INFO).where(users.c.name == name, users.c.deleted_at.is_(None))
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _info(row)

    async def delete(self, user_id: int) -> None:
        """A tombstone: renamed (the name is free again), disabled, no password, tokens, grants or SSH keys. Their locks
        keep it as owner and show the new name until someone forces them open."""
        now = utcnow()
        async with self._db.transaction() as conn:
            name = (await conn.execute(select(users.c.name).where(users.c.id == user_id))).scalar_one()
            suffix = f" (deleted #{user_id})"
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    name=name[: MAX_USER_NAME_LENGTH - len(suffix)] + suffix,
                    disabled=True,
                    is_admin=False,
                    password_hash=None,
                    deleted_at=now,
                )
            )
            await conn.execute(tokens.delete().where(tokens.c.user_id == user_id))
            await conn.execute(grants.delete().where(grants.c.user_id == user_id))
            await conn.execute(ssh_keys.delete().where(ssh_keys.c.user_id == user_id))


_INFO = (
    users.c.id,
    users.c.name,
    users.c.is_admin,
    users.c.disabled,
    users.c.password_hash.is_not(None).label("has_password"),
    users.c.created_at,
    users.c.last_active_at,
)


def _info(row: Row[tuple[int, str, bool, bool, bool, datetime, datetime | None]]) -> UserInfo:
    return UserInfo(
        row.id, row.name, row.is_admin, row.disabled, bool(row.has_password), row.created_at, row.last_active_at
    )
