"""Git LFS pointer files: the small text blob git stores in place of an LFS object (git-lfs docs/spec.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lfsd.core.errors import InvalidOid
from lfsd.core.oid import Oid

# The client writes pointers far below this; a bigger blob is never a pointer, so it is never read.
MAX_POINTER_SIZE: Final = 1024
_VERSIONS: Final = (b"https://git-lfs.github.com/spec/v1", b"https://hawser.github.com/spec/v1")


@dataclass(frozen=True, slots=True)
class Pointer:
    oid: Oid
    size: int


def parse_pointer(blob: bytes) -> Pointer | None:
    """The pointer ``blob`` is, or None when it is not one. Lines are ``key value``, ``version`` first, then keys in
    order (extensions ``ext-…`` allowed), with ``oid sha256:…`` and ``size`` required."""
    if len(blob) >= MAX_POINTER_SIZE or not blob.endswith(b"\n"):
        return None
    fields: dict[bytes, bytes] = {}
    previous = b""
    for number, line in enumerate(blob[:-1].split(b"\n")):
        key, sep, value = line.partition(b" ")
        if not sep or not key or not value:
            return None
        if number == 0:
            if key != b"version" or value not in _VERSIONS:
                return None
        elif key <= previous or key in fields:
            return None
        fields[key] = value
        previous = key if number else b""
    oid, size = fields.get(b"oid", b""), fields.get(b"size", b"")
    if not oid.startswith(b"sha256:") or not size.isdigit() or not size.isascii():
        return None
    if len(size) > 1 and size.startswith(b"0"):
        return None
    try:
        return Pointer(Oid.parse(oid[len(b"sha256:") :].decode("ascii")), int(size))
    except (InvalidOid, UnicodeDecodeError):
        return None
