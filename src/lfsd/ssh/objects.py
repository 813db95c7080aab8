"""The object commands of git-lfs-transfer: ``batch``, ``put-object``, ``get-object``, ``verify-object``.

They call the same use cases as the HTTP API: ``LfsService.batch`` decides per object, ``LfsService.upload`` streams the
body through the one upload pipeline (verified size and SHA-256, nothing stored otherwise), ``LfsService.download``
checks the index and ``read`` streams the body in bounded chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lfsd.core.auth import Permission, Repo
from lfsd.core.batch import Action, ObjectResult, ObjectSpec
from lfsd.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    LfsError,
    PayloadTooLarge,
    SizeMismatch,
)
from lfsd.core.oid import Oid
from lfsd.core.operation import Operation
from lfsd.core.text import ascii_number
from lfsd.ssh.pktline import DELIM, FLUSH, ProtocolError
from lfsd.ssh.transfer import Abort, EndSession, Session


class ObjectRefused(LfsError):
    """A per-object error of the batch, as the status of the whole answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _NoLinks:
    """SSH transfers need no links: the session is the credential. The service's signed token is not sent."""

    def action(
        self, repo: Repo, oid: Oid, operation: Operation, token: str, expires_in: int, *, nonce: str | None = None
    ) -> Action:
        return Action("", {}, expires_in)


async def batch(session: Session, operand: str) -> None:
    args, end = await session.section()
    lines: list[str] = []
    if end is DELIM:
        lines, end = await session.section(session.core.batch_max_objects)
    if end is not FLUSH:
        raise ProtocolError("a second delimiter in a batch request")
    arguments = dict(line.partition("=")[::2] for line in args)
    if arguments.get("hash-algo", "sha256") != "sha256":
        raise Conflict(f"unsupported hash algorithm {arguments['hash-algo'][:40]!r}: lfsd uses sha256")
    specs = [_spec(line) for line in lines]
    operation = session.operation
    if operation is Operation.UPLOAD:
        await session.create_for_upload()
    repo = session.require(Permission.WRITE if operation is Operation.UPLOAD else Permission.READ)
    results = await session.core.service.batch(session.identity, repo, operation, specs, _NoLinks())
    out: list[str] = []
    for result in results:
        if result.error is not None and operation is Operation.UPLOAD:
            # The protocol has no per-object errors: an upload that cannot go ahead fails the batch, with its reason.
            raise ObjectRefused(result.error.code, f"object {result.oid[:64]}: {result.error.message}")
        action = _action(result, operation)
        if action == "download":
            session.remember(Oid.parse(result.oid), result.size)  # the batch found it in the repository's index
        out.append(f"{result.oid} {result.size} {action}")
    _count(session, results)
    session.notes = {"objects": len(specs)}
    session.reply(200, ["hash-algo=sha256"], out)


def _spec(line: str) -> ObjectSpec:
    fields = line.split(" ")
    if len(fields) < 2:
        raise BadRequest(f"invalid batch line {line[:100]!r}: expected 'oid size'")
    size = ascii_number(fields[1], 20)
    return ObjectSpec(fields[0], size if size is not None else fields[1])


def _action(result: ObjectResult, operation: Operation) -> str:
    # A download the server cannot serve (unknown or invalid object) is a noop: the client reports it missing.
    if result.actions is None:
        return "noop"
    return "download" if operation is Operation.DOWNLOAD else "upload"


def _count(session: Session, results: list[ObjectResult]) -> None:
    metrics = session.core.metrics
    if metrics is None:
        return
    for result in results:
        if result.error is not None:
            outcome = {404: "not_found", 422: "invalid"}.get(result.error.code, "error")
        else:
            outcome = "action" if result.actions else "present"
        metrics.batch_objects.labels(session.operation.value, outcome).inc()


def _size(args: dict[str, str]) -> int:
    if "size" not in args:
        raise BadRequest("the size argument is required")
    size = ascii_number(args["size"], 20)
    if size is None:
        raise BadRequest(f"invalid size {args['size'][:40]!r}")
    return size


class _ObjectData:
    """The data packets of a ``put-object`` as the upload pipeline's ``ByteSource``; ``ended`` once its flush came."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.ended = False

    async def read(self) -> bytes:
        while not self.ended:
            packet = await self._session.read()
            if packet is FLUSH:
                self.ended = True
            elif packet is DELIM:
                raise ProtocolError("unexpected delimiter inside object data")
            elif isinstance(packet, bytes) and packet:
                return packet
        return b""


async def put_object(session: Session, operand: str) -> None:
    lines, end = await session.section()
    if end is not DELIM:
        raise ProtocolError("put-object without object data")
    args = dict(line.partition("=")[::2] for line in lines)
    data = _ObjectData(session)
    try:
        oid = Oid.parse(operand)
        size = _size(args)
        session.notes = {"oid": str(oid), "size": size}
        repo = session.require(Permission.WRITE)
        if session.operation is not Operation.UPLOAD:
            raise Forbidden("objects are uploaded on an upload session")
        if size > session.core.max_object_size:
            raise PayloadTooLarge(f"objects are limited to {session.core.max_object_size} bytes")
        # Over the cap (after the queue's wait) the object's bytes are still on their way: the session ends, as for
        # any refusal before the body, and the client starts a new connection.
        with await session.core.admit(session.identity):
            await session.core.service.upload(repo.id, oid, size, data, session.identity.user_id or None)
        session.remember(oid, size)
    except LfsError as exc:
        if not data.ended:
            # The rest of the body is still on its way: the next packet is not a command.
            raise EndSession(exc) from None
        if isinstance(exc, SizeMismatch):
            raise SizeMismatch(f"object {operand[:64]}: {exc.message}") from None
        raise
    session.reply(200)


async def get_object(session: Session, operand: str) -> None:
    await session.arguments()
    oid = Oid.parse(operand)
    repo = session.require(Permission.READ)
    stored = await session.core.service.download(repo.id, oid, linked=oid in session.held)
    session.notes = {"oid": str(oid), "size": stored.size}
    with await session.core.admit(session.identity):  # refused: a 429 answer, and the session goes on
        chunks = session.core.service.read(oid, 0, stored.size)
        try:
            await _send_object(session, oid, stored.size, chunks)
        finally:
            # Closed now, not when collected: a client gone mid-object must not hold the stored file open.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()


async def _send_object(session: Session, oid: Oid, size: int, chunks: AsyncIterator[bytes]) -> None:
    # The first chunk before the status: a storage error can still be answered as one.
    first = await anext(chunks, b"") if size else b""
    session.status = 200
    session.out.text("status 200")
    session.out.text(f"size={size}")
    session.out.delim()
    sent = 0
    chunk = first
    # The store's next chunk is read while this one is sent: two chunks in memory at most, and the disk (or S3) and
    # the channel busy at once instead of in turn.
    reading: asyncio.Future[bytes] | None = None
    try:
        while True:
            session.out.data(chunk)
            sent += len(chunk)
            reading = asyncio.ensure_future(anext(chunks, b"")) if chunk and sent < size else None
            await session.send()
            if reading is None:
                break
            chunk = await reading
            reading = None
            if not chunk:
                break
    except LfsError as exc:
        # The status went out: an error now can only cut the body short, and the client's hash check catches it.
        raise Abort(f"reading {oid} from the store failed after {sent} bytes: {exc.message}") from exc
    finally:
        if reading is not None:  # the channel failed first: the read ends before the reader is closed
            reading.cancel()
            await asyncio.wait([reading])
            if not reading.cancelled():
                reading.exception()  # retrieved: the channel's error is the one that ends the command
    if sent != size:
        raise Abort(f"the store gave {sent} of {size} bytes of {oid}")
    session.out.flush()


async def verify_object(session: Session, operand: str) -> None:
    args = await session.arguments()
    oid = Oid.parse(operand.split(" ")[0])
    size = _size(args)
    repo = session.require(Permission.WRITE)
    stored = await session.core.service.download(repo.id, oid, linked=session.held.get(oid) == size)
    if stored.size != size:
        raise SizeMismatch(f"object {oid} has {stored.size} bytes, not {size}")
    session.reply(200)
