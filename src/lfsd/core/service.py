"""The LFS use cases: batch, upload and download, over the core's ports."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Final

from lfsd.core.auth import Identity, Repo
from lfsd.core.batch import (
    Action,
    Decision,
    InvalidObject,
    ObjectResult,
    ObjectSpec,
    Outcome,
    decide_download,
    decide_upload,
    parse_objects,
    requested,
)
from lfsd.core.errors import InsufficientStorage, NotFound
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.ports import (
    ByteSource,
    DirectTransfers,
    LinkFactory,
    ObjectIndex,
    ObjectStore,
    StoredObject,
    opens_files,
)
from lfsd.core.signing import LinkSigner
from lfsd.core.usage import QuotaGate

Clock = Callable[[], float]

log = logging.getLogger("lfsd.service")


STAGING_NONCE_HEX: Final = 32


def upload_id_for(verify_token: str, nonce: str | None) -> str:
    """The staging place of a direct upload, derived from its verify link so that only that link can verify it.

    ``nonce`` is random per batch answer: link tokens are the same for the same caller, object and second, and two
    pushes of one object sharing a staging place made the second verify fail (the first removes it). None: a verify
    link from before the nonce (a rolling upgrade; links live minutes).
    """
    material = verify_token if nonce is None else f"{verify_token}\n{nonce}"
    return hashlib.sha256(material.encode("ascii")).hexdigest()[:32]


class LfsService:
    def __init__(
        self,
        index: ObjectIndex,
        store: ObjectStore,
        signer: LinkSigner,
        clock: Clock,
        direct: DirectTransfers | None = None,
        *,
        quota: QuotaGate | None = None,
    ) -> None:
        self._quota = quota  # repository and owner quotas, checked before any byte is sent (core/usage.py)
        self._index = index
        self._store = store
        self._signer = signer
        self._clock = clock
        self._direct = direct

    async def batch(
        self,
        identity: Identity | None,
        repo: Repo,
        operation: Operation,
        specs: Sequence[ObjectSpec],
        links: LinkFactory,
    ) -> list[ObjectResult]:
        """Decide per object once (a constant number of SQL statements, whatever the number of objects), record the
        links that need no transfer, then make each transfer's actions."""
        parsed = parse_objects(specs)
        oids = requested(parsed)
        if operation is Operation.DOWNLOAD:
            decisions = decide_download(parsed, await self._index.held_sizes(repo.id, oids) if oids else {})
        else:
            held, linkable = await self._index.upload_sizes(repo.id, identity, oids) if oids else ({}, {})
            if held or linkable:
                # The index can claim more than the store holds (a store restored from an old backup, a replica on
                # the wrong volume): such objects are offered for upload again, so the next push repairs them.
                held, linkable = await self._stored_only(repo, held, linkable)
            if held:
                # The client is pushing something that points to these: `gc --unreachable` must keep them until its
                # Git push lands. One unlinked by it a moment ago is asked for again, as a new object. Links made or
                # confirmed in the last half link lifetime are not stamped again: the collector's grace period is at
                # least a link lifetime, so they stay protected for half of one at least, and a push naming recent
                # objects writes nothing.
                still = await self._index.confirm(repo.id, held.keys(), self._signer.ttl_seconds // 2)
                if len(still) < len(held):
                    held = {oid: size for oid, size in held.items() if oid in still}
            decisions = decide_upload(parsed, held, linkable)
            if self._quota is not None:
                growing = (Outcome.TRANSFER, Outcome.LINKED)
                adding = sum(d.size for d in decisions if isinstance(d, Decision) and d.outcome in growing)
                await self._quota.check_upload(repo.id, adding)
            to_link = {d.oid: d.size for d in decisions if isinstance(d, Decision) and d.outcome is Outcome.LINKED}
            to_send = [d.oid for d in decisions if isinstance(d, Decision) and d.outcome is Outcome.TRANSFER]
            if to_send:
                # Before any upload link exists: the garbage collector leaves these oids alone for its grace period.
                await self._index.touch(to_send)
            if to_link:
                await self._index.link(repo.id, to_link, identity.user_id if identity is not None else None)
        issuer = _Issuer(self._signer, self._direct, identity, repo, links, int(self._clock()))
        if self._direct is None:  # every action is one of lfsd's own links: no await per object (issue 17)
            return [issuer.proxied_result(operation, decision) for decision in decisions]
        return [await issuer.result(operation, decision) for decision in decisions]

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

    async def verify(
        self,
        repo_id: int,
        oid: Oid,
        size: int,
        link_token: str | None,
        uploader_id: int | None = None,
        *,
        nonce: str | None = None,
    ) -> None:
        """The client says it uploaded straight to the store: promote its staged upload, then link the object.

        Only the verify link of the batch response names a staged upload (its token and ``nonce``); plain
        credentials have none to verify.
        """
        if self._direct is None:
            raise NotFound("this server does not hand out direct uploads")
        if link_token is None:
            raise NotFound("the object was not uploaded through a direct upload of this server")
        await self._direct.verify_upload(oid, size, upload_id_for(link_token, nonce))
        await self._link_stored(repo_id, {oid: size}, uploader_id)

    async def upload(
        self, repo_id: int, oid: Oid, size: int, source: ByteSource, uploader_id: int | None = None
    ) -> None:
        """Store the body (verified while streaming), then record that the repository holds it (and who sent it)."""
        await self._store.put(oid, size, source)
        await self._link_stored(repo_id, {oid: size}, uploader_id)

    async def _link_stored(self, repo_id: int, sizes: dict[Oid, int], uploader_id: int | None) -> None:
        """Link bytes the store now holds. When the repository refuses them (deleted meanwhile, or past its quota:
        two pushes may each fit alone at batch time), they are recorded as held by no repository, so that the
        garbage collector removes them: bytes without any row would stay in the store for ever."""
        try:
            await self._index.link(repo_id, sizes, uploader_id)
        except (NotFound, InsufficientStorage):
            try:
                await self._index.leave_unreferenced(sizes)
            except Exception:  # the client learns of the refusal all the same; `lfsd fsck` finds the bytes
                log.warning(
                    "stored bytes whose link was refused could not be left to the garbage collector",
                    exc_info=True,
                    extra={"event": "unreferenced_not_recorded", "oids": sorted(str(oid) for oid in sizes)},
                )
            raise

    async def download(self, repo_id: int, oid: Oid, *, linked: bool = False) -> StoredObject:
        """``linked``: a signed link of this server, checked against the caller's standing, names this repository and
        oid. Its batch found the object in the index, and nothing since can take it out of the repository without
        taking the repository or the body away too (a repository delete cascades; the standing check refuses the
        link then; a GC removes the body, and the store answers "missing"), so the index is not asked again.
        """
        await self._check_held(repo_id, oid, linked)
        return self._found(repo_id, oid, await self._store.get(oid))

    async def open_download(self, repo_id: int, oid: Oid, *, linked: bool = False) -> StoredObject:
        """``download``, with a local body opened in the same worker-thread hop that finds it (``file`` set: the
        caller closes it); stores without local files answer as ``download``."""
        await self._check_held(repo_id, oid, linked)
        if opens_files(self._store):
            return self._found(repo_id, oid, await self._store.open_body(oid))
        return self._found(repo_id, oid, await self._store.get(oid))

    async def _check_held(self, repo_id: int, oid: Oid, linked: bool) -> None:
        if not linked:
            held = await self._index.held_sizes(repo_id, [oid])
            if oid not in held:
                raise NotFound("object does not exist")

    def _found(self, repo_id: int, oid: Oid, stored: StoredObject | None) -> StoredObject:
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


class _Issuer:
    """Turns decisions into batch results: direct (presigned) or proxied actions, chosen per object, signed once."""

    def __init__(
        self,
        signer: LinkSigner,
        direct: DirectTransfers | None,
        identity: Identity | None,
        repo: Repo,
        links: LinkFactory,
        now: int,
    ) -> None:
        self._signer = signer
        self._direct = direct
        self._user_id, self._token_id = (identity.user_id, identity.token_id) if identity is not None else (0, 0)
        self._scope_grant = int(identity.scope_grant) if identity is not None else 0
        # A link (or presigned URL) never outlives the credential that asked for it.
        until = identity.valid_until if identity is not None else 0
        self._ttl = signer.ttl_seconds if not until else max(1, min(signer.ttl_seconds, until - now))
        self._repo = repo
        self._links = links
        self._now = now
        self._minters: dict[Operation, Callable[[Oid, int], str]] = {}

    async def result(self, operation: Operation, decision: Decision | InvalidObject) -> ObjectResult:
        if isinstance(decision, InvalidObject) or decision.outcome is not Outcome.TRANSFER:
            return _without_actions(decision)
        if operation is Operation.DOWNLOAD:
            actions = {"download": await self._download(decision)}
        else:
            actions = await self._upload(decision)
        return ObjectResult(decision.oid, decision.size, actions=actions)

    def proxied_result(self, operation: Operation, decision: Decision | InvalidObject) -> ObjectResult:
        """``result`` when every action is one of lfsd's own links (no direct transfers)."""
        if isinstance(decision, InvalidObject) or decision.outcome is not Outcome.TRANSFER:
            return _without_actions(decision)
        # A batch's operation is download or upload: its action has the operation's name.
        return ObjectResult(decision.oid, decision.size, actions={operation.value: self._proxied(decision, operation)})

    async def _download(self, decision: Decision) -> Action:
        if self._direct is not None:
            return await self._direct.download_action(decision.oid, self._ttl)
        return self._proxied(decision, Operation.DOWNLOAD)

    async def _upload(self, decision: Decision) -> dict[str, Action]:
        if self._direct is not None:
            # A presigned upload to a staging place plus a verify action on lfsd, which promotes and links it.
            token = self._token(decision, Operation.VERIFY)
            nonce = secrets.token_hex(STAGING_NONCE_HEX // 2)
            upload_id = upload_id_for(token, nonce)
            upload = await self._direct.upload_action(decision.oid, decision.size, self._ttl, upload_id)
            if upload is not None:
                verify = self._links.action(self._repo, decision.oid, Operation.VERIFY, token, self._ttl, nonce=nonce)
                return {"upload": upload, "verify": verify}
            # Too large for one presigned PUT: the upload goes through lfsd.
        return {"upload": self._proxied(decision, Operation.UPLOAD)}

    def _proxied(self, decision: Decision, operation: Operation) -> Action:
        token = self._token(decision, operation)
        return self._links.action(self._repo, decision.oid, operation, token, self._ttl)

    def _token(self, decision: Decision, operation: Operation) -> str:
        minter = self._minters.get(operation)
        if minter is None:
            # What every link of this batch shares is formatted once: one message and one HMAC per object.
            minter = self._minters[operation] = self._signer.minter(
                self._repo.path,
                operation,
                user_id=self._user_id,
                token_id=self._token_id,
                repo_id=self._repo.id,
                now=self._now,
                expires_at=self._now + self._ttl,
                scope_grant=self._scope_grant,
            )
        return minter(decision.oid, decision.size)


def _without_actions(decision: Decision | InvalidObject) -> ObjectResult:
    """An invalid or refused object (its error), or one with nothing to transfer."""
    if isinstance(decision, InvalidObject) or decision.outcome is Outcome.REFUSED:
        return ObjectResult(decision.oid, decision.size, error=decision.error)
    return ObjectResult(decision.oid, decision.size)
