"""The object index: which repository holds which object, and each object's size."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from lfsd.core.auth import Identity, Permission
from lfsd.core.errors import NotFound
from lfsd.core.oid import Oid
from lfsd.db.database import Database, utcnow
from lfsd.db.dialect import insert_ignore
from lfsd.db.sqlite_trip import SqliteHotPath
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
        self._pending: list[_Link] = []
        self._writer: asyncio.Task[None] | None = None
        # SQLite: the sizes queries in one trip to the driver's thread each (db/sqlite_trip.py, issue 17).
        self._hot = SqliteHotPath(db) if db.dialect == "sqlite" else None
        self._queries: dict[str, Select[tuple[str, int]]] = {}

    async def held_sizes(self, repo_id: int, oids: Iterable[Oid]) -> dict[Oid, int]:
        return await self._sizes("held", {"repo_id": repo_id}, oids)

    async def readable_sizes(self, identity: Identity | None, oids: Iterable[Oid]) -> dict[Oid, int]:
        if identity is None:
            return await self._sizes("public", {}, oids)
        if identity.repo_scope is not None:
            # A credential for one repository reads that one only (effective_permission).
            if not identity.is_admin and identity.scope_grant < Permission.READ:
                return await self._sizes(
                    "scope_granted", {"scope": str(identity.repo_scope), "user_id": identity.user_id}, oids
                )
            return await self._sizes("scope", {"scope": str(identity.repo_scope)}, oids)
        if not identity.is_admin:
            return await self._sizes("granted", {"user_id": identity.user_id}, oids)
        return await self._sizes("admin", {}, oids)

    async def _sizes(self, shape: str, parameters: dict[str, object], oids: Iterable[Oid]) -> dict[Oid, int]:
        """The sizes query of ``shape`` restricted to ``oids``, in chunks that keep bind parameters bounded. Each
        shape is built once (its values are bind parameters), and on SQLite run in one driver trip."""
        query = self._queries.get(shape)
        if query is None:
            query = self._queries[shape] = _sizes_query(shape)
        if self._hot is not None:
            return await self._hot.sizes(shape, query, parameters, oids)
        found: dict[Oid, int] = {}
        async with self._db.transaction() as conn:
            for chunk in _chunks(oids):
                for row in await conn.execute(query, {**parameters, "oids": chunk}):
                    found[Oid(row.oid)] = int(row.size)
        return found

    async def link(self, repo_id: int, sizes: dict[Oid, int]) -> None:
        """Record that ``repo_id`` holds these objects; returns once that is committed.

        Group commit: links asked for while a transaction runs are written together by the next one (one
        transaction, one log sync, a handful of driver round trips, however many uploads end at once), and each
        caller returns only after the transaction holding its rows has committed. Small uploads ending together,
        as git-lfs sends eight at a time, shared nothing before (issue 17).
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Link(repo_id, sizes, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await self._link_rows(group)
            except NotFound:
                # A repository was deleted meanwhile: only its own links fail, the others are written alone.
                for one in group:
                    await self._settle(one, self._link_rows([one]))
            except Exception as exc:  # every caller learns what went wrong with its transaction
                for one in group:
                    _finish(one.done, exc)
            except BaseException:
                for one in group + self._pending:  # the loop is closing: nobody is left waiting for ever
                    one.done.cancel()
                raise
            else:
                for one in group:
                    _finish(one.done, None)

    async def _settle(self, one: _Link, writing: Awaitable[None]) -> None:
        try:
            await writing
        except Exception as exc:
            _finish(one.done, exc)
        else:
            _finish(one.done, None)

    async def _link_rows(self, group: list[_Link]) -> None:
        now = utcnow()
        sizes = {oid: size for one in group for oid, size in one.sizes.items()}
        object_rows = [{"oid": str(oid), "size": size, "created_at": now} for oid, size in sorted(sizes.items())]
        holders = sorted({(one.repo_id, str(oid)) for one in group for oid in one.sizes})
        by_oid = {str(oid): size for oid, size in sizes.items()}
        link_rows = [
            {"repo_id": repo_id, "oid": oid, "created_at": now, "size": by_oid[oid]} for repo_id, oid in holders
        ]
        try:
            async with self._db.transaction() as conn:
                await conn.execute(insert_ignore(objects, self._db.dialect), object_rows)
                await conn.execute(insert_ignore(repo_objects, self._db.dialect), link_rows)
        except IntegrityError:
            # The only foreign key that can fail here: the repository was deleted while a link was in use.
            raise NotFound("repository not found") from None


def _sizes_query(shape: str) -> Select[tuple[str, int]]:
    """Objects' oid and size: held by one repository (``held``), or readable by a caller of ``shape``; the oids are
    the expanding parameter ``oids``, the other values parameters too."""
    query = select(objects.c.oid, objects.c.size).join(repo_objects, repo_objects.c.oid == objects.c.oid)
    if shape == "held":
        query = query.where(repo_objects.c.repo_id == bindparam("repo_id"))
    else:
        query = query.join(repos, repos.c.id == repo_objects.c.repo_id).distinct()
        if shape == "public":
            query = query.where(repos.c.is_public.is_(True))
        if shape in ("scope", "scope_granted"):
            query = query.where(repos.c.path == bindparam("scope"))
        if shape in ("granted", "scope_granted"):
            query = query.outerjoin(
                grants, (grants.c.repo_id == repos.c.id) & (grants.c.user_id == bindparam("user_id"))
            ).where(or_(repos.c.is_public.is_(True), grants.c.permission >= int(Permission.READ)))
        if shape not in ("public", "scope", "scope_granted", "granted", "admin"):
            raise ValueError(f"unknown sizes query {shape!r}")
    return query.where(objects.c.oid.in_(bindparam("oids", expanding=True)))


@dataclass(frozen=True, slots=True)
class _Link:
    repo_id: int
    sizes: dict[Oid, int]
    done: asyncio.Future[None]


def _finish(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return  # its caller was cancelled (the client went away); the rows are written all the same
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
