"""What a request does to an object: the batch's operation, and what a signed link allows."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    DOWNLOAD = "download"
    UPLOAD = "upload"
    VERIFY = "verify"  # the verify action of a direct upload; never a batch operation

    @classmethod
    def for_batch(cls, value: str) -> Operation | None:
        """The batch request's ``operation``, or None when it is not one a batch may ask for."""
        return {"download": cls.DOWNLOAD, "upload": cls.UPLOAD}.get(value)
