"""Git smart HTTP in process: the LFS API's answers for credentials and grants, the two protocol versions, request
bodies (type, gzip with its bound, stalls). The real git runs behind it."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.core.auth import Permission
from lfsd.core.repo import RepoPath
from tests.conftest import AiohttpClient, open_world
from tests.support import World

BODY_TIMEOUT = 0.5
REFS = "/acme/game.git/info/refs"
UPLOAD = "/acme/game.git/git-upload-pack"
RECEIVE = "/acme/game.git/git-receive-pack"
# A protocol v2 ls-refs request: command, delimiter, flush.
LS_REFS = b"0014command=ls-refs\n0001" + b"0000"


@pytest.fixture
async def git_world(tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=tmp_path / "data",
        fsync=False,
        buffer_size=64 * 1024,
        body_timeout=BODY_TIMEOUT,
        git_gzip_max_bytes=64 * 1024,
    )
    world = await open_world(settings, aiohttp_client)
    await world.user("reader")
    await world.user("stranger")
    await world.repo("acme/open", public=True)
    account = await world.meta.users.require("reader")
    repo = await world.meta.repos.find(RepoPath.parse("acme/game"))
    assert repo is not None
    await world.meta.repos.set_grant(repo, account.id, Permission.READ)
    yield world
    await world.meta.close()


async def test_the_advertisement_of_each_protocol_version(git_world: World) -> None:
    client = git_world.client
    response = await client.get(REFS, params={"service": "git-upload-pack"}, headers=git_world.auth("reader"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert "no-cache" in response.headers["Cache-Control"]
    assert (await response.read()).startswith(b"001e# service=git-upload-pack\n0000")

    headers = {**git_world.auth("reader"), "Git-Protocol": "version=2"}
    response = await client.get(REFS, params={"service": "git-upload-pack"}, headers=headers)
    assert response.status == 200
    assert (await response.read()).startswith(b"000eversion 2\n")


async def test_credentials_and_grants_as_the_lfs_api_answers(git_world: World) -> None:
    client = git_world.client
    upload = {"service": "git-upload-pack"}
    response = await client.get(REFS, params=upload)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Git LFS"'
    assert response.headers["Content-Type"].startswith("text/plain")  # git shows a text/plain body to its user

    response = await client.get(REFS, params=upload, headers=git_world.auth("stranger"))
    assert response.status == 404
    assert "repository not found" in await response.text()

    response = await client.get(REFS, params={"service": "git-receive-pack"}, headers=git_world.auth("reader"))
    assert response.status == 403
    assert "write access" in await response.text()

    response = await client.get("/acme/open.git/info/refs", params=upload)
    assert response.status == 200  # public: anonymous fetches
    response = await client.get("/acme/open.git/info/refs", params={"service": "git-receive-pack"})
    assert response.status == 401  # but pushing asks for credentials

    response = await client.get(REFS, headers=git_world.auth("reader"))
    assert response.status == 403  # the dumb protocol is not served
    assert "smart HTTP" in await response.text()


async def test_request_bodies_need_their_type(git_world: World) -> None:
    response = await git_world.client.post(
        UPLOAD, data=LS_REFS, headers={**git_world.auth("reader"), "Content-Type": "application/octet-stream"}
    )
    assert response.status == 415


async def test_a_gzip_body_is_inflated_and_bounded(git_world: World) -> None:
    headers = {
        **git_world.auth("root"),
        "Content-Type": "application/x-git-upload-pack-request",
        "Content-Encoding": "gzip",
        "Git-Protocol": "version=2",
    }
    response = await git_world.client.post(UPLOAD, data=gzip.compress(LS_REFS), headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert await response.read() == b"0000"  # ls-refs of an empty repository

    # 10 MB of zeros in a few kB: inflating stops at the bound.
    bomb = gzip.compress(b"0000" * 2_500_000)
    response = await git_world.client.post(UPLOAD, data=bomb, headers=headers)
    assert response.status == 413
    assert "inflate" in await response.text()


async def test_a_stalled_push_body_gets_408(git_world: World) -> None:
    reader, writer = await asyncio.open_connection(git_world.client.host, git_world.client.port)
    head = (
        f"POST {RECEIVE} HTTP/1.1\r\nHost: x\r\nAuthorization: {git_world.auth('root')['Authorization']}\r\n"
        "Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    writer.write(head.encode() + b"0000")  # 4 of the 1000 bytes, then nothing
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_TIMEOUT + 5)
    finally:
        writer.close()
    assert time.monotonic() - started < BODY_TIMEOUT + 3
    assert answer.startswith(b"HTTP/1.1 408 "), answer
