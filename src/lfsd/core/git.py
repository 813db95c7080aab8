"""Git hosting: the two services a client runs, who is pushing, and the lock rule a push must keep."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from lfsd.core.auth import Permission
from lfsd.core.errors import LfsError
from lfsd.core.lockpath import InvalidLockPath, LockPath
from lfsd.core.locks import Lock

ZERO_OID = "0" * 40


class GitService(StrEnum):
    UPLOAD_PACK = "git-upload-pack"
    RECEIVE_PACK = "git-receive-pack"

    @property
    def needed(self) -> Permission:
        """Fetching needs read, pushing write."""
        return Permission.WRITE if self is GitService.RECEIVE_PACK else Permission.READ

    @classmethod
    def parse(cls, value: object) -> GitService | None:
        if not isinstance(value, str):
            return None
        try:
            return cls(value)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Pusher:
    """Who runs a receive-pack, on which repository: what the pre-receive hook needs to check locks."""

    repo_id: int
    user_id: int
    name: str


class GitFailed(LfsError):
    """git itself failed; its stderr goes to the log, not to the client."""

    status = 500
    default_message = "git failed"


def lock_violations(changed: Iterable[str], locks: Mapping[LockPath, Lock], pusher_id: int) -> list[Lock]:
    """The locks of other users on ``changed`` paths, in path order. Paths the pusher locked, or nobody did, pass.

    Paths are compared in the locks' normal form (``LockPath``); a path that cannot be one cannot be locked.
    """
    found: dict[LockPath, Lock] = {}
    for raw in changed:
        try:
            path = LockPath.parse(raw)
        except InvalidLockPath:
            continue
        lock = locks.get(path)
        if lock is not None and lock.owner_id != pusher_id:
            found[path] = lock
    return [found[path] for path in sorted(found)]


def rejection_message(violations: Iterable[Lock]) -> str:
    """What the pusher reads (after ``remote:``): the git-lfs wording, with each lock's owner and id."""
    lines = ["Unable to push locked files:"]
    lines += [f"* {lock.path} - {lock.owner_name} (lock {lock.id})" for lock in violations]
    lines.append("lfsd: these files are locked by other users: ask them to unlock, or leave the files unchanged.")
    return "\n".join(lines) + "\n"
