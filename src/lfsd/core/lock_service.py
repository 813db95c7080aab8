"""The Locking API's use cases over a ``LockRepository``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lfsd.core.audit import AuditEntry, AuditLog, Outcome
from lfsd.core.auth import Identity, Permission, Repo
from lfsd.core.errors import Forbidden, NotFound
from lfsd.core.locks import (
    CursorCodec,
    InvalidCursor,
    Lock,
    LockId,
    LockNotFound,
    LockPath,
    RefName,
    parse_limit,
    split_ours_theirs,
)
from lfsd.core.ports import LockRepository


class LockingDisabled(NotFound):
    default_message = "file locking is not enabled for this repository"


@dataclass(frozen=True, slots=True)
class LockPage:
    locks: list[Lock]
    next_cursor: str | None


class LockService:
    """Paths, ids and refs arrive parsed (``LockPath``, ``LockId``, ``RefName``); cursors and limits are parsed
    here, with the repository's signing key and the configured bounds."""

    def __init__(
        self,
        locks: LockRepository,
        cursors: CursorCodec,
        *,
        default_limit: int,
        max_limit: int,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._locks = locks
        self._audit = audit
        self._clock = clock
        self._cursors = cursors
        self._default_limit = default_limit
        self._max_limit = max_limit

    @staticmethod
    def require_enabled(repo: Repo) -> None:
        if not repo.locking_enabled:
            raise LockingDisabled()

    async def create(self, identity: Identity, repo: Repo, path: LockPath, ref: RefName | None) -> Lock:
        return await self._locks.create(repo.id, path, identity.user_id, ref)

    async def find(
        self, repo: Repo, *, path: LockPath | None, lock_id: LockId | None, cursor: str | None, limit: object
    ) -> LockPage:
        size = parse_limit(limit, default=self._default_limit, maximum=self._max_limit)
        after = self._cursors.decode(repo.id, cursor) if cursor else 0
        locks, more = await self._locks.page(repo.id, after_id=after, limit=size, path=path, lock_id=lock_id)
        return LockPage(locks, self._cursors.encode(repo.id, locks[-1].id) if more else None)

    async def verify(
        self, identity: Identity, repo: Repo, *, cursor: object, limit: object
    ) -> tuple[list[Lock], list[Lock], str | None]:
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidCursor()
        page = await self.find(repo, path=None, lock_id=None, cursor=cursor, limit=limit)
        ours, theirs = split_ours_theirs(page.locks, identity.user_id)
        return ours, theirs, page.next_cursor

    async def unlock(
        self,
        identity: Identity,
        repo: Repo,
        lock_id: LockId,
        *,
        force: bool,
        granted: Permission,
        address: str = "",
    ) -> Lock:
        """Only the owner unlocks without ``force``; ``force`` on another user's lock needs admin. Forcing open
        another user's lock, and trying to without the right, is written to the audit log."""
        lock = await self._locks.get(repo.id, lock_id)
        if lock is None:
            raise LockNotFound()
        if lock.owner_id != identity.user_id:
            if not force:
                raise Forbidden(f"the lock is owned by {lock.owner_name}; only an admin may force it open")
            if granted < Permission.ADMIN:
                await self._record(identity, repo, lock, address, Outcome.DENIED)
                raise Forbidden("forcing open another user's lock needs admin permission on the repository")
        deleted = await self._locks.delete(repo.id, lock.id, None if force else identity.user_id)
        if deleted is None:
            raise LockNotFound()
        if deleted.owner_id != identity.user_id:
            await self._record(identity, repo, deleted, address, Outcome.OK)
        return deleted

    async def _record(self, identity: Identity, repo: Repo, lock: Lock, address: str, outcome: Outcome) -> None:
        if self._audit is None:
            return
        details = {"lock_id": lock.id, "path": str(lock.path), "owner": lock.owner_name}
        entry = AuditEntry(
            self._clock(), identity.name, "lock.force_unlock", f"repo:{repo.path}", address, outcome, details
        )
        await self._audit.record(entry)
