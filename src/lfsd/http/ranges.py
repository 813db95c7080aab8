"""HTTP ``Range`` for streamed (not ``sendfile``) downloads: one byte range, as git-lfs asks when it resumes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    length: int


class Unsatisfiable(Exception):
    """The range lies outside the object: 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None for the whole object (no header, or one this server does not serve as a range, like multi-ranges)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise Unsatisfiable()
        start = max(0, size - suffix)
        return ByteRange(start, size - start)
    start = int(first)
    if start >= size:
        raise Unsatisfiable()
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None  # syntactically invalid: ignored, as RFC 9110 says
    return ByteRange(start, end - start + 1)
