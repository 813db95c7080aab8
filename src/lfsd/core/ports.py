"""The small interfaces the outer layers implement. The core and the HTTP layer see only these."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeGuard

from lfsd.core.auth import Identity, Permission, Repo, Standing
from lfsd.core.batch import Action
from lfsd.core.git import GitService, Pusher
from lfsd.core.locks import Lock, LockPath, RefName
from lfsd.core.login import PasswordRecord
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath


class ByteSource(Protocol):
    """A request body: ``read()`` returns the next chunk as it arrived (any size), and ``b""`` only at the end."""

    async def read(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A complete, verified object body. ``path``, when set, is a local file that can be sent with ``sendfile``;
    ``file``, when set, is that file already open (``FileStore.open_body``): whoever receives it closes it."""

    size: int
    path: Path | None = None
    file: BinaryIO | None = None


class ObjectStore(Protocol):
    """Content-addressed object bodies, shared by all repositories."""

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        """Stream ``source`` in; make it visible under ``oid`` only if its SHA-256 and length match."""

    async def get(self, oid: Oid) -> StoredObject | None: ...

    def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes from ``start``, in bounded chunks."""

    async def size_of(self, oid: Oid) -> int | None: ...

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        """Those of ``oids`` whose bodies the store holds (the index may say more: a store restored from an old
        backup, a replica on the wrong volume)."""

    async def check(self) -> None:
        """Raise if the store cannot be used (for readiness and start-up)."""


class FileStore(ObjectStore, Protocol):
    """A store of local files, which can open a body and learn its size in one step (issue 17: one worker-thread
    hop per download instead of one to look the file up and one to open it)."""

    async def open_body(self, oid: Oid) -> StoredObject | None:
        """The body with ``file`` set (the caller closes it), or None if the store does not hold ``oid``."""


def opens_files(store: ObjectStore) -> TypeGuard[FileStore]:
    # Not a runtime_checkable isinstance: that walks the protocol's members on every call.
    return callable(getattr(store, "open_body", None))


BlockingPresence = Callable[[Collection[Oid]], set[Oid]]
"""``ObjectStore.present`` as a blocking call, for code already running on a worker thread (see ``present_now``)."""


class LocalPresence(ObjectStore, Protocol):
    """A store whose ``present`` is a few ``stat`` calls: code already on a worker thread (SQLite's link
    transaction) can ask it there, without two hand-offs to the event loop and a third thread (issue 17)."""

    def presence_now(self) -> BlockingPresence | None:
        """``present`` as a blocking call; None where a stat could hang (a network file system): that must not
        block a thread the caller cannot give up on, so the caller asks ``present`` instead."""


def blocking_presence(store: ObjectStore) -> BlockingPresence | None:
    """The store's ``LocalPresence.presence_now``, or None for a store without one."""
    ask = getattr(store, "presence_now", None)
    if not callable(ask):  # not a runtime_checkable isinstance, as ``opens_files``
        return None
    found: BlockingPresence | None = ask()
    return found


class PasswordHasher(Protocol):
    """A slow, salted password hash (Argon2id); ``verify`` runs off the event loop and never raises for a mismatch."""

    def hash(self, password: str) -> str: ...

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; with ``stored`` None, as long as a real check (no user oracle)."""

    def close(self) -> None:
        """Release the threads the checks run on."""


class UserDirectory(Protocol):
    async def identity_for_token(self, token: str) -> Identity | None: ...

    async def password_record(self, name: str) -> PasswordRecord | None:
        """The enabled user ``name`` with a password, else None."""


class RepoDirectory(Protocol):
    async def find(self, path: RepoPath) -> Repo | None: ...

    async def find_with_grant(self, path: RepoPath, user_id: int) -> tuple[Repo | None, Permission]:
        """The repository and the user's grant, with the same work whether or not the repository exists."""

    async def standing(self, repo_id: int, user_id: int, token_id: int) -> Standing | None:
        """What holds now for a transfer link's caller on ``repo_id``; None when the repository is gone."""

    async def create(self, path: RepoPath, *, is_public: bool) -> Repo: ...

    async def grant_of(self, repo: Repo, user_id: int) -> Permission: ...


class ObjectIndex(Protocol):
    """Which repository holds which object. Storage is shared; this index is what grants access."""

    async def held_sizes(self, repo_id: int, oids: Iterable[Oid]) -> dict[Oid, int]: ...

    async def readable_sizes(self, identity: Identity | None, oids: Iterable[Oid]) -> dict[Oid, int]:
        """Sizes of those ``oids`` that some repository readable by ``identity`` holds."""

    async def upload_sizes(
        self, repo_id: int, identity: Identity | None, oids: Collection[Oid]
    ) -> tuple[dict[Oid, int], dict[Oid, int]]:
        """What an upload batch asks, at once: ``held_sizes`` of ``oids``, and ``readable_sizes`` of the others."""

    async def link(self, repo_id: int, objects: dict[Oid, int], uploader_id: int | None = None) -> None:
        """Record that the repository holds ``objects`` (idempotent, safe under concurrent calls). ``uploader_id``:
        the user whose upload or batch linked them, kept only by the first link of each object to the repository.

        Raises ``NotFound`` when the repository no longer exists."""

    async def touch(self, oids: Collection[Oid]) -> None:
        """An upload batch hands out links for ``oids``: keep them from the garbage collector for its grace period."""

    async def confirm(self, repo_id: int, oids: Collection[Oid], refresh_seconds: int) -> set[Oid]:
        """An upload batch found the repository holding ``oids``: a pointer to them may be on its way, so keep them
        from ``gc --unreachable`` for its grace period (links made or kept so in the last ``refresh_seconds`` need
        nothing more). Those of ``oids`` the repository still holds."""

    async def leave_unreferenced(self, objects: dict[Oid, int]) -> None:
        """Stored bytes that no repository took (their link was refused): record them as objects no repository holds,
        which the garbage collector marks and removes after its grace period. Objects already recorded stay as
        they are."""


class LockRepository(Protocol):
    """Locks per repository. The database arbitrates: one lock per (repository, path), whatever the process."""

    async def create(self, repo_id: int, path: LockPath, owner_id: int, ref: RefName | None) -> Lock:
        """The new lock; raises ``LockExists`` with the winning lock when the path is taken."""

    async def get(self, repo_id: int, lock_id: int) -> Lock | None: ...

    async def page(
        self, repo_id: int, *, after_id: int, limit: int, path: LockPath | None = None, lock_id: int | None = None
    ) -> tuple[list[Lock], bool]:
        """Up to ``limit`` locks with ids above ``after_id`` in id order, and whether more follow."""

    async def delete(self, repo_id: int, lock_id: int, owner_id: int | None) -> Lock | None:
        """Delete the lock (only if ``owner_id`` owns it, unless None); the deleted lock or None."""


class LinkFactory(Protocol):
    """lfsd's own transfer links, rendered by the front end that serves them (the HTTP layer owns hrefs and the
    ``Authorization`` scheme that carries a signed token)."""

    def action(
        self, repo: Repo, oid: Oid, operation: Operation, token: str, expires_in: int, *, nonce: str | None = None
    ) -> Action:
        """``nonce``: a verify link's staging nonce (``LfsService.verify``), which the link carries back."""


class DirectTransfers(Protocol):
    """Transfers that bypass lfsd: the store hands out short-lived signed URLs (S3 presigned requests)."""

    async def download_action(self, oid: Oid, ttl_seconds: int) -> Action: ...

    async def upload_action(self, oid: Oid, size: int, ttl_seconds: int, upload_id: str) -> Action | None:
        """A signed upload of this object to a staging place of its own (``upload_id``: 32 hex digits), or None when
        this object must go through lfsd."""

    async def verify_upload(self, oid: Oid, size: int, upload_id: str) -> None:
        """Make the staged upload the stored object if it has exactly this size and SHA-256, else raise; either way
        the staged upload is removed, and a stored object is never touched by a failed verify."""


class GitRepositories(Protocol):
    """The bare Git repositories, one per repository path (a directory each, shared by every lfsd process)."""

    def location(self, path: RepoPath) -> Path:
        """Where the bare repository of ``path`` lives (or would)."""

    async def ensure(self, path: RepoPath) -> Path:
        """The bare repository of ``path``, created (atomically, with lfsd's hooks) when missing."""

    async def delete(self, path: RepoPath) -> bool:
        """Remove the bare repository; False when there was none."""

    async def rename(self, old: RepoPath, new: RepoPath) -> None:
        """Move the bare repository (nothing when ``old`` has none); raises ``Conflict`` when ``new`` exists."""


class GitRpc(Protocol):
    """The git side of smart HTTP: each call streams one service's output while its input streams in."""

    def advertise(self, service: GitService, git_dir: Path, protocol: str | None) -> AsyncGenerator[bytes]:
        """The service's ref (or, for protocol v2, capability) advertisement."""

    def rpc(
        self, service: GitService, git_dir: Path, body: ByteSource, protocol: str | None, pusher: Pusher | None
    ) -> AsyncGenerator[bytes]:
        """One stateless request: ``body`` in, the service's response out. ``pusher`` is set for receive-pack."""
