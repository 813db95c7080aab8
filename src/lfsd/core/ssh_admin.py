"""The SSH key use cases: add, list and remove a user's public keys, checked and audited like ``Administration``.

Users manage their own keys; server admins anyone's. Adding and removing are recorded with their outcome (and a
refused list too); the key itself is never recorded, only its type and fingerprint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from lfsd.core.audit import Actor, AuditLog
from lfsd.core.audited import Audited
from lfsd.core.directory import UserAdmin, UserInfo
from lfsd.core.errors import NotFound
from lfsd.core.sshkeys import SshKeyAdmin, SshKeyInfo, check_key_label, parse_public_key

T = TypeVar("T")
Clock = Callable[[], datetime]


class SshKeyAdministration:
    def __init__(self, users: UserAdmin, keys: SshKeyAdmin, audit: AuditLog, clock: Clock) -> None:
        self._users = users
        self._keys = keys
        self._audited = Audited(audit, clock)

    async def _do(
        self,
        actor: Actor,
        action: str,
        target: str,
        work: Callable[[], Awaitable[T]],
        *,
        allowed: bool,
        details: dict[str, object],
        change: bool = True,
    ) -> T:
        return await self._audited.run(
            actor,
            action,
            target,
            work,
            allowed=allowed,
            refusal=f"{action} needs a server administrator or the key's owner",
            details=details,
            change=change,
        )

    async def _user(self, name: str) -> UserInfo:
        found = await self._users.user_info(name)
        if found is None:
            raise NotFound(f"no user named {name!r}")
        return found

    @staticmethod
    def _own(actor: Actor, name: str) -> bool:
        return actor.is_admin or (actor.user_id != 0 and actor.name == name)

    async def add_key(self, actor: Actor, name: str, public_key: str, *, label: str | None = None) -> SshKeyInfo:
        """Register ``public_key`` (one line of a ``.pub`` file) for user ``name``. The label defaults to the key's
        comment. A key already registered, to this user or another, is a ``Conflict``: one key, one user."""
        key = parse_public_key(public_key)
        label = label if label is not None else (key.comment[:100] or None)
        check_key_label(label)
        details: dict[str, object] = {"type": key.key_type, "fingerprint": key.fingerprint, "label": label}

        async def work() -> SshKeyInfo:
            user = await self._user(name)
            key_id = await self._keys.add(user.id, key, label)
            details["key_id"] = key_id
            info = await self._keys.key_info(key_id)
            assert info is not None
            return info

        return await self._do(
            actor, "sshkey.add", f"user:{name}", work, allowed=self._own(actor, name), details=details
        )

    async def list_keys(self, actor: Actor, name: str) -> list[SshKeyInfo]:
        async def work() -> list[SshKeyInfo]:
            return await self._keys.keys_of((await self._user(name)).id)

        return await self._do(
            actor, "sshkey.list", f"user:{name}", work, allowed=self._own(actor, name), details={}, change=False
        )

    async def remove_key(self, actor: Actor, key_id: int) -> SshKeyInfo:
        """Remove key ``key_id``: sessions it would open are refused at once, and the credentials
        ``git-lfs-authenticate`` handed out with it stop working."""
        found = await self._keys.key_info(key_id)
        own = found is not None and actor.user_id != 0 and found.user_id == actor.user_id

        async def work() -> SshKeyInfo:
            if found is None or not await self._keys.remove(key_id):
                raise NotFound(f"no SSH key {key_id}")
            return found

        target = f"sshkey:{key_id}" if found is None else f"user:{found.user_name}"
        details: dict[str, object] = {"key_id": key_id}
        if found is not None:
            details["fingerprint"] = found.fingerprint
        return await self._do(actor, "sshkey.remove", target, work, allowed=actor.is_admin or own, details=details)
