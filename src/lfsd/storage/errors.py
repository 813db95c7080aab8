"""Storage errors that are about configuration, not requests (kept apart so the S3 client loads only when used)."""

from __future__ import annotations


class StorageConfigError(Exception):
    """The store cannot be used as configured (a missing bucket, denied access, an unreachable endpoint)."""
