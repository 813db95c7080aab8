"""The LFS use cases: batch, upload and download, over the core's ports."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

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

log = logging.getLogger("lfsd.service")


def upload_id_for(verify_token: str) -> str:
    """The staging place of a direct upload, derived from its verify link so that only that link can verify it."""
    return hashlib.sha256(verify_token.encode("ascii")).hexdigest()[:32]


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
        if held or linkable:
            # The index can claim more than the store holds (a store restored from an old backup, a replica on the
            # wrong volume): such objects are offered for upload again, so the next push repairs them.
            held, linkable = await self._stored_only(repo, held, linkable)

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

    async def _stored_only(
        self, repo: Repo, held: Mapping[Oid, int], linkable: Mapping[Oid, int]
    ) -> tuple[dict[Oid, int], dict[Oid, int]]:
        stored = await self._store.present(held.keys() | linkable.keys())
        for oid in sorted((held.keys() | linkable.keys()) - stored):
            # Never unlinked here: a mis-mounted volume would otherwise erase the index. `lfsd fsck` finds them all.
            log.error(
                "object %s is in the index but missing from the store; offering it for upload again",
                oid,
                extra={"event": "object_missing", "oid": str(oid), "repo": str(repo.path)},
            )
        return (
            {oid: size for oid, size in held.items() if oid in stored},
            {oid: size for oid, size in linkable.items() if oid in stored},
        )

    async def _direct_upload(
        self, identity: Identity | None, repo: Repo, item: ValidObject, result: ObjectResult, href: HrefBuilder
    ) -> None:
        """A presigned upload to a staging place plus a verify action on lfsd, which promotes and links it."""
        assert self._direct is not None
        verify = self._action(identity, repo, item, LinkOperation.VERIFY, href)
        token = verify.header["Authorization"].removeprefix(f"{LINK_AUTH_SCHEME} ")
        action = await self._direct.upload_action(item.oid, item.size, self._signer.ttl_seconds, upload_id_for(token))
        if action is None:
            return  # too large for one PUT: the proxied upload stays
        result.actions = {"upload": action, "verify": verify}

    async def verify(self, repo_id: int, oid: Oid, size: int, link_token: str | None) -> None:
        """The client says it uploaded straight to the store: promote its staged upload, then link the object.

        Only the verify link of the batch response names a staged upload; plain credentials have none to verify.
        """
        if self._direct is None:
            raise NotFound("this server does not hand out direct uploads")
        if link_token is None:
            raise NotFound("the object was not uploaded through a direct upload of this server")
        await self._direct.verify_upload(oid, size, upload_id_for(link_token))
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
            log.error(
                "object %s is in the index but missing from the store",
                oid,
                extra={"event": "object_missing", "oid": str(oid), "repo_id": repo_id},
            )
            raise NotFound("object is missing from the server's storage; push it again or ask an administrator")
        return stored

    def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        return self._store.read(oid, start, length)
