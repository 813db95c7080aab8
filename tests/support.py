"""Helpers shared by the tests: objects with known oids, an in-process server world."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from lfsd.core.auth import Permission
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
from lfsd.http.media import LFS_JSON

LFS_HEADERS = {"Accept": LFS_JSON, "Content-Type": LFS_JSON}


@dataclass(frozen=True)
class Blob:
    data: bytes

    @property
    def oid(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def spec(self) -> dict[str, Any]:
        return {"oid": self.oid, "size": self.size}


def blob(size: int, seed: bytes | None = None) -> Blob:
    if seed is None:
        return Blob(os.urandom(size))
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return Blob(bytes(out[:size]))


def basic(name: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


@dataclass
class World:
    """An in-process lfsd with helpers to create users, tokens, repositories and grants."""

    meta: Metadata
    client: TestClient[Any, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    async def user(self, name: str, *, admin: bool = False, password: str | None = None) -> dict[str, str]:
        await self.meta.users.add(name, is_admin=admin, password=password)
        token = await self.meta.users.create_token(name)
        self.tokens[name] = token
        return basic(name, token)

    async def repo(self, path: str, *, public: bool = False, grants: dict[str, str] | None = None) -> None:
        repo = await self.meta.repos.create(RepoPath.parse(path), is_public=public)
        for name, level in (grants or {}).items():
            account = await self.meta.users.require(name)
            await self.meta.repos.set_grant(repo, account.id, Permission.parse(level))

    def auth(self, name: str) -> dict[str, str]:
        return basic(name, self.tokens[name])

    async def batch(
        self,
        repo: str,
        operation: str,
        objects: list[dict[str, Any]],
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> ClientResponse:
        body = {"operation": operation, "transfers": ["basic"], "objects": objects, **extra}
        return await self.client.post(
            f"/{repo}.git/info/lfs/objects/batch", json=body, headers={**LFS_HEADERS, **(headers or {})}
        )

    async def batch_ok(
        self, repo: str, operation: str, blobs: list[Blob], headers: dict[str, str]
    ) -> list[dict[str, Any]]:
        response = await self.batch(repo, operation, [b.spec() for b in blobs], headers)
        assert response.status == 200, await response.text()
        assert response.content_type == LFS_JSON
        payload = await response.json(content_type=LFS_JSON)
        objects: list[dict[str, Any]] = payload["objects"]
        return objects

    async def push(self, repo: str, blobs: list[Blob], headers: dict[str, str]) -> None:
        """Upload through the batch API and the returned actions, as git-lfs does."""
        for obj, item in zip(await self.batch_ok(repo, "upload", blobs, headers), blobs, strict=True):
            action = obj.get("actions", {}).get("upload")
            if action is None:
                continue
            response = await self.client.session.put(action["href"], data=item.data, headers=action["header"])
            assert response.status == 200, await response.text()

    async def fetch(self, repo: str, item: Blob, headers: dict[str, str]) -> bytes:
        (obj,) = await self.batch_ok(repo, "download", [item], headers)
        action = obj["actions"]["download"]
        response = await self.client.session.get(action["href"], headers=action["header"])
        assert response.status == 200
        return await response.read()


async def lfs_error(response: ClientResponse, status: int) -> dict[str, Any]:
    """Assert an LFS JSON error with ``status`` and return its body."""
    text = await response.text()
    assert response.status == status, f"{response.status} != {status}: {text}"
    assert response.content_type == LFS_JSON, text
    body: dict[str, Any] = await response.json(content_type=LFS_JSON)
    assert isinstance(body.get("message"), str) and body["message"]
    assert body.get("request_id") == response.headers["X-Request-Id"]
    assert "Traceback" not in text
    return body
