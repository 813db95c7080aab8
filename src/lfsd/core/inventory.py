"""The whole-store view that fsck (and later GC) works on: every indexed object with its repositories, every stored
body, and the two ports that give them. Kept apart from ``ports.py``: the request path never needs these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath


@dataclass(frozen=True, slots=True)
class IndexedObject:
    """An object that at least one repository holds, with its recorded size and every repository holding it."""

    oid: Oid
    size: int
    repos: tuple[RepoPath, ...]


@dataclass(frozen=True, slots=True)
class StoredBody:
    """A body the store holds under an object's key, as its listing shows it."""

    oid: Oid
    size: int


class IndexInventory(Protocol):
    """The object index, whole: paged in oid order, and unlinked object by object."""

    async def count(self, repo: RepoPath | None = None) -> int:
        """How many objects some repository (or ``repo``) holds."""

    async def page(self, after: Oid | None, limit: int, repo: RepoPath | None = None) -> list[IndexedObject]:
        """Up to ``limit`` held objects with oids above ``after``, in oid order (only those ``repo`` holds, if set);
        ``repos`` always names every repository holding the object."""

    async def unlink(self, oids: Collection[Oid]) -> int:
        """Remove ``oids`` from every repository in one transaction; how many links were removed. The bytes and the
        object's size record stay (the size is a fact about the oid)."""

    async def unlink_from(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        """Remove ``oids`` from ``repo`` only, in one transaction; how many it held. Raises ``NotFound`` without it."""

    async def adopt(self, sizes: Mapping[Oid, int]) -> int:
        """Record verified stored bodies (oid: size) as held by no repository, so that garbage collection removes
        them one grace period from now; oids that have a row keep it as it is. How many rows were made. Bodies no row
        names (an upload whose link never committed: a crash, a database outage) would otherwise stay for ever."""


class StoreInventory(Protocol):
    """The object store, whole: listed in oid order, stat-ed, read and quarantined."""

    def listing(self) -> AsyncIterator[StoredBody]:
        """Every stored body in oid order. Work in progress (temp files, staged direct uploads) and quarantined
        bodies are not objects and are never listed."""

    async def sizes(self, oids: Collection[Oid]) -> dict[Oid, int]:
        """The stored sizes of those of ``oids`` the store holds."""

    def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes from ``start``, in bounded chunks."""

    async def quarantine(self, oid: Oid) -> str | None:
        """Move the body aside, out of every reader's way; where it went, or None when it was not there."""

    async def digests(self, bodies: Sequence[tuple[Oid, int]]) -> dict[Oid, str | None]:
        """The SHA-256 (hex) of each of ``bodies``, small ones (oid, expected size), read whole in as few hops as
        the backend needs; None for a body that is missing or not of the expected size."""


@dataclass(frozen=True, slots=True)
class Removed:
    repo: RepoPath
    requested: int
    unlinked: int


async def remove_objects(index: IndexInventory, repo: RepoPath, oids: Sequence[Oid]) -> Removed:
    """Unlink ``oids`` from ``repo``: it stops serving them at once; other repositories holding them keep them, and
    the bytes stay until garbage collection."""
    unique = sorted(set(oids))
    return Removed(repo, len(unique), await index.unlink_from(repo, unique))
