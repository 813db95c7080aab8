"""The lock commands of git-lfs-transfer: ``lock``, ``list-lock`` and ``unlock``, over ``LockService``.

Lock answers carry the lock as arguments (``id=``, ``path=``, ``locked-at=``, ``ownername=``), also with a 409 for the
lock that holds the path; a list is ``lock``/``path``/``locked-at``/``ownername``/``owner`` lines per lock, ``owner``
being ``ours`` or ``theirs`` for the session's user, and ``next-cursor=`` when more follow.
"""

from __future__ import annotations

from datetime import UTC

from lfsd.core.auth import Permission
from lfsd.core.locks import Lock, LockExists, LockId, LockNotFound, LockPath, RefName
from lfsd.ssh.transfer import Session


def _timestamp(lock: Lock) -> str:
    return lock.locked_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_arguments(lock: Lock) -> list[str]:
    return [
        f"id={lock.id}",
        f"path={lock.path}",
        f"locked-at={_timestamp(lock)}",
        f"ownername={lock.owner_name}",
    ]


async def lock(session: Session, operand: str) -> None:
    lines, _ = await session.section()  # the spec puts a delimiter before the flush, the client does not
    args = dict(line.partition("=")[::2] for line in lines)
    repo = session.require(Permission.WRITE)
    session.core.locks.require_enabled(repo)
    path = LockPath.parse(args.get("path"))
    ref = RefName.parse(args.get("refname"))
    session.notes = {"path": str(path)}
    try:
        created = await session.core.locks.create(session.identity, repo, path, ref)
    except LockExists as exc:
        session.error(exc, lock_arguments(exc.lock))
        return
    session.reply(201, lock_arguments(created))


async def list_locks(session: Session, operand: str) -> None:
    args = await session.arguments()
    repo = session.require(Permission.READ)
    session.core.locks.require_enabled(repo)
    path = LockPath.parse(args["path"]) if args.get("path") else None
    try:
        lock_id = LockId.parse(args["id"]) if args.get("id") else None
    except LockNotFound:
        session.reply(200, [], [])  # no lock has an id outside the column's range
        return
    page = await session.core.locks.find(
        repo, path=path, lock_id=lock_id, cursor=args.get("cursor"), limit=args.get("limit")
    )
    lines: list[str] = []
    for found in page.locks:
        owner = "ours" if found.owner_id == session.identity.user_id else "theirs"
        lines += [
            f"lock {found.id}",
            f"path {found.id} {found.path}",
            f"locked-at {found.id} {_timestamp(found)}",
            f"ownername {found.id} {found.owner_name}",
            f"owner {found.id} {owner}",
        ]
    cursor = [f"next-cursor={page.next_cursor}"] if page.next_cursor is not None else []
    session.notes = {"locks": len(page.locks)}
    session.reply(200, cursor, lines)


async def unlock(session: Session, operand: str) -> None:
    args = await session.arguments()
    repo = session.require(Permission.WRITE)
    session.core.locks.require_enabled(repo)
    lock_id = LockId.parse(operand)
    RefName.parse(args.get("refname"))  # not stored, but judged like any other: one rule for refs
    force = args.get("force") in ("", "true", "1")
    deleted = await session.core.locks.unlock(
        session.identity, repo, lock_id, force=force, granted=session.permission, address="ssh"
    )
    session.reply(200, lock_arguments(deleted))
