"""The LFS use cases over in-memory fakes of the core's ports: fast, and no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass, field

import pytest

from lfsd.core.auth import Identity, Repo
from lfsd.core.batch import Action, ObjectSpec
from lfsd.core.errors import InsufficientStorage, NotFound, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.ports import ByteSource, StoredObject
from lfsd.core.repo import RepoPath
from lfsd.core.service import LfsService, upload_id_for
from lfsd.core.signing import LinkSigner

REPO = Repo(id=1, path=RepoPath.parse("acme/game"), is_public=False)
ALICE = Identity(user_id=7, name="alice", is_admin=False, token_id=3)
NOW = 1_000_000


def oid_of(data: bytes) -> Oid:
    return Oid.parse(hashlib.sha256(data).hexdigest())


@dataclass
class FakeIndex:
    held: dict[int, dict[Oid, int]] = field(default_factory=dict)
    readable: dict[Oid, int] = field(default_factory=dict)
    linked: list[dict[Oid, int]] = field(default_factory=list)
    touched: list[Oid] = field(default_factory=list)
    unreferenced: dict[Oid, int] = field(default_factory=dict)
    refusal: Exception | None = None  # what ``link`` raises, when set
    confirmed: list[Oid] = field(default_factory=list)
    unlinked_meanwhile: set[Oid] = field(default_factory=set)  # gone by the time ``confirm`` runs
    unrecordable: bool = False  # ``leave_unreferenced`` fails too

    async def held_sizes(self, repo_id: int, oids: Iterable[Oid]) -> dict[Oid, int]:
        mine = self.held.get(repo_id, {})
        return {oid: mine[oid] for oid in oids if oid in mine}

    async def readable_sizes(self, identity: Identity | None, oids: Iterable[Oid]) -> dict[Oid, int]:
        return {oid: self.readable[oid] for oid in oids if oid in self.readable}

    async def upload_sizes(
        self, repo_id: int, identity: Identity | None, oids: Collection[Oid]
    ) -> tuple[dict[Oid, int], dict[Oid, int]]:
        held = await self.held_sizes(repo_id, oids)
        return held, await self.readable_sizes(identity, [oid for oid in oids if oid not in held])

    async def link(self, repo_id: int, objects: dict[Oid, int], uploader_id: int | None = None) -> None:
        if self.refusal is not None:
            raise self.refusal
        self.linked.append(dict(objects))
        self.held.setdefault(repo_id, {}).update(objects)

    async def touch(self, oids: Collection[Oid]) -> None:
        self.touched.extend(oids)

    async def confirm(self, repo_id: int, oids: Collection[Oid], refresh_seconds: int) -> set[Oid]:
        self.confirmed.extend(oids)
        mine = self.held.get(repo_id, {})
        for oid in self.unlinked_meanwhile:
            mine.pop(oid, None)
        return {oid for oid in oids if oid in mine}

    async def leave_unreferenced(self, objects: dict[Oid, int]) -> None:
        if self.unrecordable:
            raise ServiceUnavailable("the database is unavailable")
        self.unreferenced.update(objects)


@dataclass
class FakeStore:
    bodies: dict[Oid, bytes] = field(default_factory=dict)

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        chunks = []
        while chunk := await source.read():
            chunks.append(chunk)
        self.bodies[oid] = b"".join(chunks)

    async def get(self, oid: Oid) -> StoredObject | None:
        return StoredObject(len(self.bodies[oid])) if oid in self.bodies else None

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        yield self.bodies[oid][start : start + length]

    async def size_of(self, oid: Oid) -> int | None:
        return len(self.bodies[oid]) if oid in self.bodies else None

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        return {oid for oid in oids if oid in self.bodies}

    async def check(self) -> None:
        return None


@dataclass
class FakeLinks:
    made: list[tuple[Oid, Operation, str]] = field(default_factory=list)

    nonces: list[str | None] = field(default_factory=list)

    def action(
        self, repo: Repo, oid: Oid, operation: Operation, token: str, expires_in: int, *, nonce: str | None = None
    ) -> Action:
        self.made.append((oid, operation, token))
        self.nonces.append(nonce)
        return Action(href=f"lfsd:{repo.path}/{oid}/{operation}", header={"token": token}, expires_in=expires_in)


@dataclass
class FakeDirect:
    limit: int = 1000
    uploads: list[tuple[Oid, str]] = field(default_factory=list)
    verified: list[tuple[Oid, int, str]] = field(default_factory=list)

    async def download_action(self, oid: Oid, ttl_seconds: int) -> Action:
        return Action(href=f"s3:{oid}", header={}, expires_in=ttl_seconds)

    async def upload_action(self, oid: Oid, size: int, ttl_seconds: int, upload_id: str) -> Action | None:
        if size > self.limit:
            return None
        self.uploads.append((oid, upload_id))
        return Action(href=f"s3:staging/{upload_id}", header={}, expires_in=ttl_seconds)

    async def verify_upload(self, oid: Oid, size: int, upload_id: str) -> None:
        self.verified.append((oid, size, upload_id))


class Body:
    def __init__(self, data: bytes) -> None:
        self._chunks = [data]

    async def read(self) -> bytes:
        return self._chunks.pop() if self._chunks else b""


SIGNER = LinkSigner(b"k" * 32, 600)


def service(index: FakeIndex, store: FakeStore, direct: FakeDirect | None = None) -> LfsService:
    return LfsService(index, store, SIGNER, lambda: NOW, direct)


async def test_download_actions_are_signed_links_for_held_objects_only() -> None:
    data = b"held"
    held, missing = oid_of(data), oid_of(b"missing")
    links = FakeLinks()
    lfs = service(FakeIndex(held={1: {held: 4}}), FakeStore({held: data}))
    results = await lfs.batch(ALICE, REPO, Operation.DOWNLOAD, [ObjectSpec(held, 4), ObjectSpec(missing, 7)], links)
    assert results[0].actions is not None
    assert results[1].error is not None and results[1].error.code == 404
    ((oid, operation, token),) = links.made
    assert (oid, operation) == (held, Operation.DOWNLOAD)
    grant = SIGNER.verify(token, REPO.path, held, Operation.DOWNLOAD, NOW)
    assert (grant.user_id, grant.token_id, grant.repo_id, grant.size) == (7, 3, 1, 4)


async def test_upload_decides_once_and_links_once() -> None:
    present, linkable, new = oid_of(b"p"), oid_of(b"l"), oid_of(b"n")
    index = FakeIndex(held={1: {present: 1}}, readable={linkable: 1})
    links = FakeLinks()
    lfs = service(index, FakeStore({present: b"p", linkable: b"l"}))
    specs = [ObjectSpec(present, 1), ObjectSpec(linkable, 1), ObjectSpec(new, 1)]
    results = await lfs.batch(ALICE, REPO, Operation.UPLOAD, specs, links)
    assert [r.actions is not None for r in results] == [False, False, True]
    assert index.linked == [{linkable: 1}]
    assert [(oid, op) for oid, op, _ in links.made] == [(new, Operation.UPLOAD)]
    assert index.touched == [new]  # only the transfers: kept from the garbage collector for its grace period
    assert index.confirmed == [present]  # what it holds: kept from `gc --unreachable` until the push lands


async def test_an_object_unlinked_as_the_batch_confirms_it_is_asked_for_again() -> None:
    kept, unlinked = oid_of(b"k"), oid_of(b"u")
    index = FakeIndex(held={1: {kept: 1, unlinked: 1}}, unlinked_meanwhile={unlinked})
    links = FakeLinks()
    lfs = service(index, FakeStore({kept: b"k", unlinked: b"u"}))
    results = await lfs.batch(ALICE, REPO, Operation.UPLOAD, [ObjectSpec(kept, 1), ObjectSpec(unlinked, 1)], links)
    assert [r.actions is not None for r in results] == [False, True]
    assert [(oid, op) for oid, op, _ in links.made] == [(unlinked, Operation.UPLOAD)]


async def test_objects_the_store_lost_are_offered_again_and_never_linked() -> None:
    lost, lost_elsewhere = oid_of(b"x"), oid_of(b"y")
    index = FakeIndex(held={1: {lost: 1}}, readable={lost_elsewhere: 1})
    links = FakeLinks()
    results = await service(index, FakeStore()).batch(
        ALICE, REPO, Operation.UPLOAD, [ObjectSpec(lost, 1), ObjectSpec(lost_elsewhere, 1)], links
    )
    assert all(r.actions is not None for r in results)
    assert index.linked == []


async def test_direct_uploads_sign_one_verify_link_per_object() -> None:
    small, huge = oid_of(b"small"), oid_of(b"huge")
    direct = FakeDirect(limit=100)
    links = FakeLinks()
    lfs = service(FakeIndex(), FakeStore(), direct)
    results = await lfs.batch(ALICE, REPO, Operation.UPLOAD, [ObjectSpec(small, 5), ObjectSpec(huge, 500)], links)
    assert results[0].actions is not None and set(results[0].actions) == {"upload", "verify"}
    assert results[0].actions["upload"].href.startswith("s3:")
    assert results[1].actions is not None and set(results[1].actions) == {"upload"}
    assert results[1].actions["upload"].href.startswith("lfsd:")
    verify = [(oid, op, token) for oid, op, token in links.made if op is Operation.VERIFY]
    assert [oid for oid, _, _ in verify] == [small]
    (nonce,) = [nonce for nonce in links.nonces if nonce is not None]
    assert direct.uploads == [(small, upload_id_for(verify[0][2], nonce))]


async def test_direct_downloads_are_presigned() -> None:
    data = b"d"
    oid = oid_of(data)
    links = FakeLinks()
    lfs = service(FakeIndex(held={1: {oid: 1}}), FakeStore({oid: data}), FakeDirect())
    (result,) = await lfs.batch(None, REPO, Operation.DOWNLOAD, [ObjectSpec(oid, 1)], links)
    assert result.actions is not None and result.actions["download"].href == f"s3:{oid}"
    assert links.made == []


async def test_verify_needs_direct_mode_and_the_verify_link() -> None:
    oid = oid_of(b"v")
    with pytest.raises(NotFound):
        await service(FakeIndex(), FakeStore()).verify(1, oid, 1, "token")
    direct = FakeDirect()
    index = FakeIndex()
    lfs = service(index, FakeStore(), direct)
    with pytest.raises(NotFound):
        await lfs.verify(1, oid, 1, None)
    await lfs.verify(1, oid, 1, "the-token", nonce="0" * 32)
    await lfs.verify(1, oid, 1, "the-token")  # a link from before nonces (a rolling upgrade)
    assert direct.verified == [
        (oid, 1, upload_id_for("the-token", "0" * 32)),
        (oid, 1, upload_id_for("the-token", None)),
    ]
    assert index.linked == [{oid: 1}, {oid: 1}]


async def test_two_batch_answers_in_one_second_stage_one_object_in_two_places() -> None:
    """Link tokens are the same for the same caller, object and second: the staging place is not, or the first
    verify would remove what the second one needs."""
    small = oid_of(b"s")
    direct = FakeDirect()
    lfs = service(FakeIndex(), FakeStore(), direct)
    links = FakeLinks()
    for _ in range(2):
        await lfs.batch(ALICE, REPO, Operation.UPLOAD, [ObjectSpec(small, 5)], links)
    tokens = {token for _, op, token in links.made if op is Operation.VERIFY}
    assert len(tokens) == 1  # the clock stood still
    assert len({upload_id for _, upload_id in direct.uploads}) == 2


async def test_upload_stores_then_links_and_download_reports_a_lost_object() -> None:
    data = b"body"
    oid = oid_of(data)
    index, store = FakeIndex(), FakeStore()
    lfs = service(index, store)
    await lfs.upload(1, oid, 4, Body(data))
    assert store.bodies[oid] == data and index.linked == [{oid: 4}]
    assert (await lfs.download(1, oid)).size == 4
    with pytest.raises(NotFound):
        await lfs.download(2, oid)  # another repository does not hold it
    del store.bodies[oid]
    with pytest.raises(NotFound, match="missing"):
        await lfs.download(1, oid)


@pytest.mark.parametrize("refusal", [InsufficientStorage("over its quota"), NotFound("repository not found")])
async def test_stored_bytes_whose_link_is_refused_are_left_to_the_collector(refusal: Exception) -> None:
    """Two pushes may each fit the quota at batch time, and a repository may be deleted during an upload: the link
    is refused after the bytes are stored. Without a row they would stay in the store for ever."""
    data = b"refused"
    oid = oid_of(data)
    index, store, direct = FakeIndex(refusal=refusal), FakeStore(), FakeDirect()
    with pytest.raises(type(refusal)):
        await service(index, store).upload(1, oid, len(data), Body(data))
    assert store.bodies[oid] == data and index.unreferenced == {oid: len(data)}
    index.unreferenced.clear()
    with pytest.raises(type(refusal)):
        await service(index, store, direct).verify(1, oid, len(data), "the-token")
    assert index.unreferenced == {oid: len(data)}


async def test_the_refusal_reaches_the_client_when_the_bytes_cannot_be_recorded() -> None:
    data = b"refused"
    oid = oid_of(data)
    index = FakeIndex(refusal=InsufficientStorage("over its quota"), unrecordable=True)
    with pytest.raises(InsufficientStorage, match="over its quota"):
        await service(index, FakeStore()).upload(1, oid, len(data), Body(data))


async def test_other_link_failures_record_nothing() -> None:
    """A 503 (the database, or bytes collected while uploading) is retried by the client; nothing to record."""
    data = b"retried"
    oid = oid_of(data)
    index = FakeIndex(refusal=ServiceUnavailable("the database is unavailable"))
    with pytest.raises(ServiceUnavailable):
        await service(index, FakeStore()).upload(1, oid, len(data), Body(data))
    assert index.unreferenced == {}
