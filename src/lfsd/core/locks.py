"""File locks: ids, refs, the lock value, cursors and limits, and the ours/theirs split of verification.

Lock paths have a module of their own (``lockpath``); each value a request carries is parsed into a type whose
domain is what its column holds, so nothing unparsed reaches SQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lfsd.core.errors import Conflict, NotFound, Unprocessable
from lfsd.core.lockpath import InvalidLockPath, LockPath
from lfsd.core.text import ascii_number, has_control_characters

__all__ = ["InvalidLockPath", "LockPath"]  # re-exported: the lock rules in one import

MAX_LOCK_ID: Final = 2**31 - 1  # locks.id is a 32-bit INTEGER on every database
# locks.ref is VARCHAR(4096): git allows ref names as long as a path (PATH_MAX), far beyond 255.
MAX_REF_LENGTH: Final = 4096


class InvalidCursor(Unprocessable):
    default_message = "invalid cursor: use a next_cursor returned by this server"


class InvalidLimit(Unprocessable):
    default_message = "invalid limit"


class InvalidRef(Unprocessable):
    default_message = f"invalid ref: expected a git ref name of at most {MAX_REF_LENGTH} characters"


class LockNotFound(NotFound):
    default_message = "lock not found"


class LockId(int):
    """A lock id as a URL or query carries it: ASCII digits naming 1 .. ``MAX_LOCK_ID``."""

    @classmethod
    def parse(cls, value: object) -> LockId:
        """The id, or ``LockNotFound``: a value outside the column's range names no lock."""
        number = ascii_number(value, 20)
        if number is None or not 1 <= number <= MAX_LOCK_ID:
            raise LockNotFound()
        return cls(number)


class RefName(str):
    """The ``ref.name`` of a lock request: at most ``MAX_REF_LENGTH`` characters, no control characters.

    git refuses control characters in ref names, and PostgreSQL cannot store NUL.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, value: object) -> RefName | None:
        """None when the client names no ref (absent, null or empty)."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > MAX_REF_LENGTH or has_control_characters(value):
            raise InvalidRef()
        return cls(value)


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
        value = ascii_number(value, 10)
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
        text, _, mac = cursor.partition(".")
        last = ascii_number(text, 10)
        if last is None or last > MAX_LOCK_ID:
            raise InvalidCursor()
        if not hmac.compare_digest(self._mac(repo_id, last).encode(), mac.encode("ascii", "replace")):
            raise InvalidCursor()
        return last


def split_ours_theirs(locks: list[Lock], user_id: int) -> tuple[list[Lock], list[Lock]]:
    ours = [lock for lock in locks if lock.owner_id == user_id]
    theirs = [lock for lock in locks if lock.owner_id != user_id]
    return ours, theirs
