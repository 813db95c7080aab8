"""Object ids: the SHA-256 of an object's content, as 64 lowercase hex digits."""

from __future__ import annotations

import re
from typing import Final

from lfsd.core.errors import InvalidOid

_OID_RE: Final = re.compile(r"[0-9a-f]{64}")


class Oid(str):
    """A validated object id. Only :meth:`parse` makes one, so any ``Oid`` is safe in paths and keys."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: object) -> Oid:
        if not isinstance(value, str) or _OID_RE.fullmatch(value) is None:
            raise InvalidOid()
        return cls(value)

    @property
    def shard(self) -> tuple[str, str]:
        """Two directory levels that spread objects evenly (``ab/cd/abcd…``)."""
        return self[0:2], self[2:4]
