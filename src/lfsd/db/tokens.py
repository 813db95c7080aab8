"""Personal access tokens as the administration sees them: issued, listed and revoked by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from lfsd.core.directory import TokenInfo
from lfsd.core.tokens import Scope, new_token, token_digest
from lfsd.db.database import Database, utcnow
from lfsd.db.tables import tokens, users

_COLUMNS = (
    tokens.c.id,
    tokens.c.user_id,
    users.c.name,
    tokens.c.label,
    tokens.c.scope,
    tokens.c.created_at,
    tokens.c.last_used_at,
    tokens.c.expires_at,
    tokens.c.revoked_at,
)


def _info(row: Any) -> TokenInfo:  # a row of _COLUMNS
    return TokenInfo(
        id=row.id,
        user_id=row.user_id,
        user_name=row.name,
        label=row.label,
        scope=Scope(row.scope),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlTokenAdmin:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(
        self, user_id: int, *, label: str | None, scope: Scope, expires_at: datetime | None
    ) -> tuple[int, str]:
        secret = new_token()
        values = {
            "user_id": user_id,
            "digest": token_digest(secret),
            "created_at": utcnow(),
            "label": label,
            "scope": int(scope),
            "expires_at": expires_at,
        }
        async with self._db.transaction() as conn:
            result = await conn.execute(tokens.insert().values(**values))
        (token_id,) = result.inserted_primary_key or (None,)
        assert isinstance(token_id, int)
        return token_id, secret

    async def tokens_of(self, user_id: int, *, after: int | None = None, limit: int | None = None) -> list[TokenInfo]:
        query = (
            select(*_COLUMNS)
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .order_by(tokens.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tokens.c.id > after)
        async with self._db.transaction() as conn:
            return [_info(row) for row in (await conn.execute(query)).all()]

    async def token_info(self, token_id: int) -> TokenInfo | None:
        query = select(*_COLUMNS).join(users, users.c.id == tokens.c.user_id).where(tokens.c.id == token_id)
        async with self._db.transaction() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _info(row)

    async def revoke(self, token_id: int) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
        return bool(result.rowcount)

    async def revoke_all(self, user_id: int) -> int:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return int(result.rowcount)
