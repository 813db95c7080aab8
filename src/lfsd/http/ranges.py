"""HTTP ``Range`` (RFC 9110 §14) for every download, decided once here whatever the store; the stores only obey.

lfsd serves one byte range, which is what git-lfs asks for when it resumes. Everything else a server may ignore
(§14.2): other units, syntactically invalid range sets (a range whose last byte precedes its first is one) and
several ranges get the whole object with 200, exactly as without a ``Range`` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_RANGE_SPEC: Final = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)
_OWS: Final = " \t"


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


class Unsatisfiable(Exception):
    """The range lies outside the object: 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, or None for the whole object (no header, or one this server ignores)."""
    if header is None:
        return None
    unit, equals, range_set = header.partition("=")
    if not equals or unit.lower() != "bytes":
        return None
    specs = [spec.strip(_OWS) for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # a list may hold empty elements (RFC 9110 §5.6.1)
    if len(specs) != 1:
        return None  # none is invalid; several are served whole
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None  # "-" alone
        suffix = int(last)
        if suffix == 0:
            raise Unsatisfiable()
        if size == 0:
            return None  # no byte to name in a Content-Range: the (empty) whole
        start = max(0, size - suffix)
        return ByteRange(start, size - start)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, hence ignored (§14.1.1), before asking whether it fits
    if start >= size:
        raise Unsatisfiable()
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end - start + 1)


def wanted_range(range_header: str | None, if_range: str | None, size: int, etag: str) -> ByteRange | None:
    """``parse_range``, once ``If-Range`` (§13.1.5) holds: only a strong match of our ``etag`` keeps the range.

    lfsd sends no ``Last-Modified``, so an ``If-Range`` date never matches and the whole object is sent.
    """
    if if_range is not None and if_range.strip(_OWS) != etag:
        return None
    return parse_range(range_header, size)
