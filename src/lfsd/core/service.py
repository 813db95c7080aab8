"""The LFS use cases: batch, upload and download, over the core's ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from lfsd.core.auth import Identity, Repo
from lfsd.core.batch import (
    Action,
    ObjectResult,
    ObjectSpec,
    Operation,
    ValidObject,
    parse_objects,
    plan_download,
    plan_upload,
)
from lfsd.core.errors import NotFound
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, DirectTransfers, ObjectIndex, ObjectStore, StoredObject
from lfsd.core.signing import LinkOperation, LinkSigner

HrefBuilder = Callable[[Repo, Oid, LinkOperation], str]
Clock = Callable[[], float]

LINK_AUTH_SCHEME = "LFSD-Link"


class LfsService:
    def __init__(
        self,
        index: ObjectIndex,
        store: ObjectStore,
        signer: LinkSigner,
        clock: Clock,
        direct: DirectTransfers | None = None,
    ) -> None:
        self._index = index
        self._store = store
        self._signer = signer
        self._clock = clock
        self._direct = direct

    def _action(
        self, identity: Identity | None, repo: Repo, item: ValidObject, op: LinkOperation, href: HrefBuilder
    ) -> Action:
        now = int(self._clock())
        user_id, token_id = (identity.user_id, identity.token_id) if identity is not None else (0, 0)
        token = self._signer.sign(
            repo.path, item.oid, op, user_id=user_id, token_id=token_id, repo_id=repo.id, size=item.size, now=now
        )
        return Action(
            href=href(repo, item.oid, op),
            header={"Authorization": f"{LINK_AUTH_SCHEME} {token}"},
            expires_in=self._signer.ttl_seconds,
        )

    async def batch(
        self,
        identity: Identity | None,
        repo: Repo,
        operation: Operation,
        specs: Sequence[ObjectSpec],
        href: HrefBuilder,
    ) -> list[ObjectResult]:
        parsed = parse_objects(specs)
        oids = {item.oid for item in parsed.valid}
        held = await self._index.held_sizes(repo.id, oids) if oids else {}
        if operation is Operation.DOWNLOAD:

            def download(item: ValidObject) -> dict[str, Action]:
                return {"download": self._action(identity, repo, item, LinkOperation.DOWNLOAD, href)}

            results = plan_download(parsed, held, download)
            if self._direct is not None:
                for result in results:
                    if result.actions is not None:
                        action = await self._direct.download_action(Oid(result.oid), self._signer.ttl_seconds)
                        result.actions = {"download": action}
            return results

        missing = oids - held.keys()
        linkable = await self._index.readable_sizes(identity, missing) if missing else {}

        def upload(item: ValidObject) -> dict[str, Action]:
            return {"upload": self._action(identity, repo, item, LinkOperation.UPLOAD, href)}

        results, to_link = plan_upload(parsed, held, linkable, upload)
        if to_link:
            await self._index.link(repo.id, to_link)
        if self._direct is not None:
            for result in results:
                if result.actions is not None:
                    await self._direct_upload(identity, repo, ValidObject(Oid(result.oid), result.size), result, href)
        return results

    async def _direct_upload(
        self, identity: Identity | None, repo: Repo, item: ValidObject, result: ObjectResult, href: HrefBuilder
    ) -> None:
        """A presigned upload plus a verify action on lfsd, which links the object once the store holds it."""
        assert self._direct is not None
        action = await self._direct.upload_action(item.oid, item.size, self._signer.ttl_seconds)
        if action is None:
            return  # too large for one PUT, or already stored: the proxied upload stays
        verify = self._action(identity, repo, item, LinkOperation.VERIFY, href)
        result.actions = {"upload": action, "verify": verify}

    async def verify(self, repo_id: int, oid: Oid, size: int) -> None:
        """The client says it uploaded straight to the store: check that, then record the repository's link."""
        if self._direct is None:
            raise NotFound("this server does not hand out direct uploads")
        await self._direct.verify_upload(oid, size)
        await self._index.link(repo_id, {oid: size})

    async def upload(self, repo_id: int, oid: Oid, size: int, source: ByteSource) -> None:
        """Store the body (verified while streaming), then record that the repository holds it."""
        await self._store.put(oid, size, source)
        await self._index.link(repo_id, {oid: size})

    async def download(self, repo_id: int, oid: Oid) -> StoredObject:
        held = await self._index.held_sizes(repo_id, [oid])
        if oid not in held:
            raise NotFound("object does not exist")
        stored = await self._store.get(oid)
        if stored is None:
            raise NotFound("object does not exist")
        return stored

    def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        return self._store.read(oid, start, length)
