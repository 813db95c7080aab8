"""Lock paths: the one normal form in which a file's path is stored and compared, whichever client names it."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from lfsd.core.errors import Unprocessable
from lfsd.core.text import has_control_characters

MAX_LOCK_PATH_LENGTH: Final = 1024  # locks.path is VARCHAR(1024): characters, on PostgreSQL and MySQL alike
# NFC makes a string at most three times longer; anything longer than this cannot fit once normalised.
_MAX_INPUT_LENGTH: Final = 4 * MAX_LOCK_PATH_LENGTH
# A Windows drive (``C:``, ``C:/x``); ``x:y.txt`` stays a valid name on other systems.
_DRIVE_RE: Final = re.compile(r"[A-Za-z]:(/|$)")


class InvalidLockPath(Unprocessable):
    default_message = (
        "invalid lock path: expected a relative path inside the repository of at most "
        f"{MAX_LOCK_PATH_LENGTH} characters, without control characters or empty, '.' or '..' segments"
    )


class LockPath(str):
    """A repository-relative file path, normalised: ``/`` separators and Unicode NFC.

    Normalising makes one file one lock: Windows clients may send ``dir\\file`` and macOS file systems hand out
    decomposed (NFD) names, while git and Linux clients send ``dir/file`` in NFC. (A ``\\`` inside a Linux file
    name is therefore read as a separator; git for Windows cannot check such a file out anyway.)

    Rejected, as 422: anything but a string; the empty path; more than 1024 characters once normalised (the
    column's size); C0 and C1 control characters and DEL (NUL included); a leading ``/`` or a drive such as
    ``C:/``; an empty, ``.`` or ``..`` segment, so also ``a//b`` and a trailing ``/``. Everything else a file
    name may hold is kept as sent: spaces (leading and trailing too), colons (``x:y.txt``), no-break spaces,
    zero-width joiners, emoji.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, value: object) -> LockPath:
        if not isinstance(value, str) or not value or len(value) > _MAX_INPUT_LENGTH:
            raise InvalidLockPath()
        if has_control_characters(value):
            raise InvalidLockPath()
        path = unicodedata.normalize("NFC", value.replace("\\", "/"))
        if len(path) > MAX_LOCK_PATH_LENGTH or path.startswith("/") or _DRIVE_RE.match(path):
            raise InvalidLockPath()
        if any(segment in ("", ".", "..") for segment in path.split("/")):
            raise InvalidLockPath()
        return cls(path)
