"""The pre-receive hook's use case: which locks of other users a push would break."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lfsd.core.git import Pusher, lock_violations
from lfsd.core.lockpath import LockPath
from lfsd.core.locks import Lock
from lfsd.core.ports import LockRepository

PAGE = 1000


class PushLockCheck:
    def __init__(self, locks: LockRepository) -> None:
        self._locks = locks

    async def others_locks(self, pusher: Pusher) -> dict[LockPath, Lock]:
        """The repository's locks held by anyone but the pusher, by path (read a page at a time)."""
        held: dict[LockPath, Lock] = {}
        after = 0
        while True:
            page, more = await self._locks.page(pusher.repo_id, after_id=after, limit=PAGE)
            held.update((LockPath(lock.path), lock) for lock in page if lock.owner_id != pusher.user_id)
            if not more:
                return held
            after = page[-1].id

    async def violations(self, pusher: Pusher, changed: Callable[[], Iterable[str]]) -> list[Lock]:
        """The locks the push breaks. ``changed`` (the paths the new commits touch) is asked for only when other
        users hold locks, so a repository nobody locks costs no diff at all."""
        held = await self.others_locks(pusher)
        if not held:
            return []
        return lock_violations(changed(), held, pusher.user_id)
