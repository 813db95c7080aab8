"""Basic transfers: verified uploads, Range downloads, bad bodies, Expect: 100-continue, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lfsd.config import Settings
from tests.support import World, blob, lfs_error


async def _upload_action(world: World, repo: str, size: int, oid: str | None = None) -> dict[str, Any]:
    item = blob(size)
    spec = {"oid": oid or item.oid, "size": size}
    response = await world.batch(repo, "upload", [spec], world.auth("root"))
    (obj,) = (await response.json(content_type=None))["objects"]
    action: dict[str, Any] = obj["actions"]["upload"]
    action["data"] = item.data
    return action


def _stored_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "objects").rglob("*") if p.is_file()]


def _temp_files(settings: Settings) -> list[Path]:
    return list((settings.data_dir / "tmp").iterdir())


def _being_written(settings: Settings) -> list[str]:
    """Temp files, and the unnamed (``O_TMPFILE``) files this process (the server's) holds open in the store."""
    found = [str(path) for path in _temp_files(settings)]
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith(str(settings.data_dir)) and target.endswith(" (deleted)"):
                found.append(target)
    return found


async def test_hash_mismatch_is_422_and_stores_nothing(world: World, settings: Settings) -> None:
    await world.repo("acme/game")
    action = await _upload_action(world, "acme/game", 1000, oid="0" * 64)
    response = await world.client.session.put(action["href"], data=action["data"], headers=action["header"])
    await lfs_error(response, 422)
    assert _stored_files(settings) == [] and _temp_files(settings) == []
    (obj,) = await world.batch_ok("acme/game", "download", [blob(0)], world.auth("root"))
    assert obj["error"]["code"] == 404


@pytest.mark.parametrize("delta", [-1, 1])
async def test_content_length_differing_from_declared_size_is_422(world: World, settings: Settings, delta: int) -> None:
    await world.repo("acme/game")
    action = await _upload_action(world, "acme/game", 1000)
    data = action["data"] + b"x" if delta > 0 else action["data"][:-1]
    response = await world.client.session.put(action["href"], data=data, headers=action["header"])
    await lfs_error(response, 422)
    assert _stored_files(settings) == []


async def _chunked(data: bytes, piece: int = 3000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def test_chunked_upload_is_accepted_and_verified(world: World, settings: Settings) -> None:
    await world.repo("acme/game")
    action = await _upload_action(world, "acme/game", 100_000)
    response = await world.client.session.put(action["href"], data=_chunked(action["data"]), headers=action["header"])
    assert response.status == 200, await response.text()
    assert [p.read_bytes() for p in _stored_files(settings)] == [action["data"]]


async def test_chunked_upload_longer_than_declared_is_422(world: World, settings: Settings) -> None:
    await world.repo("acme/game")
    action = await _upload_action(world, "acme/game", 100_000)
    body = _chunked(action["data"] + b"extra")
    response = await world.client.session.put(action["href"], data=body, headers=action["header"])
    await lfs_error(response, 422)
    assert _stored_files(settings) == [] and _temp_files(settings) == []


async def test_direct_put_with_credentials(world: World) -> None:
    await world.repo("acme/game")
    item = blob(5000)
    url = f"/acme/game.git/info/lfs/objects/{item.oid}"
    assert (await world.client.put(url, data=item.data, headers=world.auth("root"))).status == 200
    response = await world.client.get(url, headers=world.auth("root"))
    assert await response.read() == item.data
    await lfs_error(await world.client.put(url, data=item.data), 401)


async def test_range_downloads(world: World) -> None:
    await world.repo("acme/game")
    item = blob(10_000)
    await world.push("acme/game", [item], world.auth("root"))
    (obj,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    action = obj["actions"]["download"]
    headers = {**action["header"], "Range": "bytes=100-199"}
    response = await world.client.session.get(action["href"], headers=headers)
    assert response.status == 206
    assert response.headers["Content-Range"] == "bytes 100-199/10000"
    assert await response.read() == item.data[100:200]
    response = await world.client.session.get(action["href"], headers={**action["header"], "Range": "bytes=9000-"})
    assert response.status == 206 and await response.read() == item.data[9000:]
    response = await world.client.session.get(action["href"], headers={**action["header"], "Range": "bytes=20000-"})
    assert response.status == 416
    response = await world.client.session.get(action["href"], headers=action["header"])
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("oid", ["A" * 64, "a" * 63, "zz", "..%2F..%2Fetc"])
async def test_invalid_oid_in_url_is_422(world: World, oid: str) -> None:
    await world.repo("acme/game")
    response = await world.client.get(f"/acme/game.git/info/lfs/objects/{oid}", headers=world.auth("root"))
    await lfs_error(response, 422)


@pytest.mark.parametrize(
    "path", ["/acme/../x/info/lfs/objects/batch", "/a//b/info/lfs/objects/batch", "/x/info/lfs/objects/batch"]
)
async def test_invalid_repo_path_is_404(world: World, path: str) -> None:
    response = await world.client.post(path, json={}, headers=world.auth("root"))
    await lfs_error(response, 404)


async def test_expect_continue_refused_before_the_body(world: World, settings: Settings) -> None:
    await world.repo("acme/game")
    item = blob(10)
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    writer.write(
        (
            f"PUT /acme/game.git/info/lfs/objects/{item.oid} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert b" 401 " in status_line
    writer.close()
    assert _stored_files(settings) == []


async def test_expect_continue_accepted_with_link(world: World) -> None:
    await world.repo("acme/game")
    action = await _upload_action(world, "acme/game", 10)
    path = "/" + action["href"].split("/", 3)[3]
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    writer.write(
        (
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {action['header']['Authorization']}\r\n"
            "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    assert b" 100 " in await asyncio.wait_for(reader.readline(), 5)
    await reader.readline()
    writer.write(action["data"])
    await writer.drain()
    assert b" 200 " in await asyncio.wait_for(reader.readline(), 5)
    writer.close()


async def test_client_disconnect_mid_upload_leaves_no_file(world: World, settings: Settings) -> None:
    await world.repo("acme/game")
    size = 3 * 1024 * 1024
    action = await _upload_action(world, "acme/game", size)
    path = "/" + action["href"].split("/", 3)[3]
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    writer.write(
        (
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {action['header']['Authorization']}\r\n"
            f"Content-Length: {size}\r\n\r\n"
        ).encode()
        + action["data"][: size // 2]
    )
    await writer.drain()
    for _ in range(100):
        if _being_written(settings):
            break
        await asyncio.sleep(0.02)
    assert _being_written(settings), "the upload should have started"
    writer.transport.abort()
    for _ in range(200):
        if not _being_written(settings):
            break
        await asyncio.sleep(0.02)
    assert _being_written(settings) == []
    assert _temp_files(settings) == [] and _stored_files(settings) == []
    # The server keeps serving.
    item = blob(10)
    await world.push("acme/game", [item], world.auth("root"))
    assert hashlib.sha256(await world.fetch("acme/game", item, world.auth("root"))).hexdigest() == item.oid
    del reader


async def test_two_uploads_of_one_object_at_once(world: World, settings: Settings) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "write"})
    await world.repo("acme/other", grants={"alice": "write"})
    item = blob(300_000)
    first = (await world.batch_ok("acme/game", "upload", [item], world.auth("alice")))[0]["actions"]["upload"]
    second = (await world.batch_ok("acme/other", "upload", [item], world.auth("alice")))[0]["actions"]["upload"]
    responses = await asyncio.gather(
        *(
            world.client.session.put(action["href"], data=_chunked(item.data, 7000), headers=action["header"])
            for action in (first, second, first)
        )
    )
    assert [r.status for r in responses] == [200, 200, 200]
    assert [p.read_bytes() for p in _stored_files(settings)] == [item.data]
    assert _temp_files(settings) == []
    for repo in ("acme/game", "acme/other"):
        assert await world.fetch(repo, item, world.auth("alice")) == item.data


async def test_upload_racing_a_download(world: World) -> None:
    await world.repo("acme/game")
    item = blob(500_000)
    (obj,) = await world.batch_ok("acme/game", "upload", [item], world.auth("root"))
    upload = obj["actions"]["upload"]

    async def slow_body() -> AsyncIterator[bytes]:
        for start in range(0, item.size, 50_000):
            await asyncio.sleep(0.01)
            yield item.data[start : start + 50_000]

    put = asyncio.ensure_future(world.client.session.put(upload["href"], data=slow_body(), headers=upload["header"]))
    # While the upload runs, the object is not there: a download gets a per-object 404, never partial bytes.
    (early,) = await world.batch_ok("acme/game", "download", [item], world.auth("root"))
    assert early["error"]["code"] == 404
    assert (await put).status == 200
    assert await world.fetch("acme/game", item, world.auth("root")) == item.data
