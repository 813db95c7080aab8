"""``gc --unreachable``: unlink from a repository the LFS objects no ref of its Git repository points to.

Only for repositories whose Git lfsd hosts: beside an external Git host lfsd cannot know what is referenced, and
unlinks nothing. The bytes are not touched here; once unlinked, an object is garbage for the collector after the
grace period, like any other.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath

PAGE = 1000


class ReferencedObjects(Protocol):
    async def referenced(self, repo: RepoPath) -> set[Oid] | None:
        """The oids the pointers in any ref of ``repo``'s Git repository name; None when lfsd hosts no Git
        repository for it (or the repository has no refs yet)."""


class LinkIndex(Protocol):
    async def linked_before(self, repo: RepoPath, cutoff: datetime, after: Oid | None, limit: int) -> list[Oid]:
        """Up to ``limit`` oids ``repo`` holds through links made before ``cutoff``, above ``after``, in order."""

    async def unlink_stale(self, repo: RepoPath, oids: Collection[Oid], cutoff: datetime) -> list[Oid]:
        """Remove from ``repo`` those of ``oids`` it still holds through links made, and last confirmed by an upload
        batch, before ``cutoff`` (what ``linked_before`` lists); the ones removed."""

    async def relink(self, repo: RepoPath, oids: Collection[Oid]) -> int:
        """Link ``oids`` to ``repo`` again where the object is still indexed; how many were linked."""


@dataclass(frozen=True, slots=True)
class Unreachable:
    repo: RepoPath
    hosted: bool  # False: no Git repository here, nothing was considered
    unlinked: tuple[Oid, ...]
    relinked: int  # pointers that appeared while this ran (a push landing): linked back


async def unreachable_objects(
    index: LinkIndex, refs: ReferencedObjects, repo: RepoPath, cutoff: datetime
) -> tuple[bool, list[Oid]]:
    """Whether ``repo``'s Git is hosted here, and the oids it holds, linked before ``cutoff``, that no ref
    references. A link younger than ``cutoff`` is kept: its pointer may be on its way (``git lfs push`` uploads the
    objects before git pushes the commits)."""
    referenced = await refs.referenced(repo)
    if referenced is None:
        return False, []
    found: list[Oid] = []
    after: Oid | None = None
    while page := await index.linked_before(repo, cutoff, after, PAGE):
        found += [oid for oid in page if oid not in referenced]
        after = page[-1]
    return True, found


async def unlink_unreachable(
    index: LinkIndex, refs: ReferencedObjects, repo: RepoPath, cutoff: datetime, *, dry_run: bool = False
) -> Unreachable:
    """Unlink what ``unreachable_objects`` finds, then read the refs once more and link back whatever a push made
    reachable in between: a pointer that lands while this runs keeps its object (its bytes are still there, the
    collector's grace period protects them)."""
    hosted, doomed = await unreachable_objects(index, refs, repo, cutoff)
    if dry_run or not doomed:
        return Unreachable(repo, hosted, tuple(doomed), 0)
    # Only what is still stale: an upload batch may have found one meanwhile (a push that points to it again).
    removed = await index.unlink_stale(repo, doomed, cutoff)
    now_referenced = await refs.referenced(repo) or set()
    back = [oid for oid in removed if oid in now_referenced]
    relinked = await index.relink(repo, back) if back else 0
    return Unreachable(repo, hosted, tuple(oid for oid in removed if oid not in now_referenced), relinked)
