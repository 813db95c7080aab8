"""The admin API's JSON for the core's records (the shapes ``lfsd … --json`` prints, where it has them)."""

from __future__ import annotations

from datetime import UTC, datetime

from lfsd.core.audit import AuditEntry
from lfsd.core.directory import GrantInfo, RepoInfo, TokenInfo, UserInfo
from lfsd.core.locks import Lock


def when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def user(info: UserInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "admin": info.is_admin,
        "disabled": info.disabled,
        "password": info.has_password,
        "created_at": when(info.created_at),
        "last_active_at": when(info.last_active_at),
    }


def token(info: TokenInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "user": info.user_name,
        "label": info.label,
        "scopes": info.scope.names,
        "created_at": when(info.created_at),
        "last_used_at": when(info.last_used_at),
        "expires_at": when(info.expires_at),
    }


def repo(info: RepoInfo) -> dict[str, object]:
    return {
        "id": info.repo.id,
        "path": str(info.repo.path),
        "public": info.repo.is_public,
        "locking": info.repo.locking_enabled,
        "created_at": when(info.created_at),
        "objects": info.objects,
        "bytes": info.bytes,
        "last_push": when(info.last_push),
    }


def grant(info: GrantInfo) -> dict[str, object]:
    return {"repo": str(info.repo_path), "user": info.user_name, "permission": info.permission.name.lower()}


def lock(info: Lock) -> dict[str, object]:
    return {
        "id": str(info.id),
        "path": info.path,
        "locked_at": when(info.locked_at),
        "owner": {"name": info.owner_name},
    }


def audit(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": when(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "address": entry.address,
        "outcome": str(entry.outcome),
        "details": dict(entry.details),
    }
