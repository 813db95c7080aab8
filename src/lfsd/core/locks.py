"""File locks: path rules, the lock value, cursors and limits, and the ours/theirs split of verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lfsd.core.errors import Conflict, Unprocessable

MAX_PATH_LENGTH: Final = 1024


class InvalidLockPath(Unprocessable):
    default_message = "invalid lock path: expected a relative path inside the repository"


class InvalidCursor(Unprocessable):
    default_message = "invalid cursor: use a next_cursor returned by this server"


class InvalidLimit(Unprocessable):
    default_message = "invalid limit"


def parse_lock_path(value: object) -> str:
    """A lock path as the client sends it: repository-relative, ``/``-separated, no ``..``, no NUL."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH_LENGTH:
        raise InvalidLockPath()
    if "\x00" in value or value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        raise InvalidLockPath()
    if any(segment in ("..", ".") or segment == "" for segment in value.replace("\\", "/").split("/")):
        raise InvalidLockPath()
    if not value.isprintable():
        raise InvalidLockPath()
    return value


def path_key(path: str) -> str:
    """A fixed-size key for uniqueness: an index over long VARCHARs is limited on MySQL."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Lock:
    id: int
    path: str
    locked_at: datetime
    owner_id: int
    owner_name: str


class LockExists(Conflict):
    """Another lock holds the path; ``lock`` is the one that won."""

    default_message = "the path is already locked"

    def __init__(self, lock: Lock) -> None:
        super().__init__(f"{lock.path!r} is already locked by {lock.owner_name}")
        self.lock = lock


def parse_limit(value: object, *, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidLimit(f"limit must be a whole number from 1 to {maximum}")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise InvalidLimit(f"limit must be a whole number from 1 to {maximum}")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidLimit(f"limit must be a whole number from 1 to {maximum}")
    return value


class CursorCodec:
    """Opaque keyset cursors: the last lock id listed, bound to the repository and signed.

    A cursor is stable under concurrent inserts and deletes (it names a position, not an offset), and one that
    this server never issued (or issued for another repository) is refused.
    """

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"lfsd-lock-cursor\n" + key).digest()

    def _mac(self, repo_id: int, last_id: int) -> str:
        digest = hmac.new(self._key, f"{repo_id}:{last_id}".encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def encode(self, repo_id: int, last_id: int) -> str:
        return f"{last_id}.{self._mac(repo_id, last_id)}"

    def decode(self, repo_id: int, cursor: object) -> int:
        if not isinstance(cursor, str) or len(cursor) > 64:
            raise InvalidCursor()
        last, _, mac = cursor.partition(".")
        if not (last.isascii() and last.isdigit()) or len(last) > 19:
            raise InvalidCursor()
        if not hmac.compare_digest(self._mac(repo_id, int(last)).encode(), mac.encode("ascii", "replace")):
            raise InvalidCursor()
        return int(last)


def split_ours_theirs(locks: list[Lock], user_id: int) -> tuple[list[Lock], list[Lock]]:
    ours = [lock for lock in locks if lock.owner_id == user_id]
    theirs = [lock for lock in locks if lock.owner_id != user_id]
    return ours, theirs
