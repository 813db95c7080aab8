"""Range requests (RFC 9110 §14): the parser, and one table run against local disk and S3 with identical answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lfsd.config import Settings
from lfsd.core.oid import Oid
from lfsd.core.ports import StoredObject
from lfsd.http.ranges import ByteRange, Unsatisfiable, parse_range, wanted_range
from tests.conftest import AiohttpClient, open_world
from tests.delegating_store import DelegatingStore
from tests.s3server import S3Server
from tests.support import World, blob, lfs_error


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=10-19", ByteRange(10, 10)),
        ("bytes=90-", ByteRange(90, 10)),
        ("bytes=90-500", ByteRange(90, 10)),
        ("bytes=-5", ByteRange(95, 5)),
        ("bytes=-500", ByteRange(0, 100)),
        ("Bytes=0-0", ByteRange(0, 1)),
        ("bytes=0-1,", ByteRange(0, 2)),
        ("bytes=0-1,5-6", None),
        ("bytes=0-1, 5-6", None),
        ("items=0-1", None),
        ("bytes=5-2", None),
        ("bytes=500-200", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes", None),
        ("bytes=abc", None),
        ("bytes=1-2-3", None),
        ("bytes=+1-2", None),
        ("bytes=\u0661-2", None),  # an Arabic-Indic digit: int() would take it
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=500-600", "bytes=-0", "bytes=100-100"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_empty_object() -> None:
    assert parse_range("bytes=-5", 0) is None
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=0-", 0)


def test_if_range_keeps_the_range_only_for_our_strong_etag() -> None:
    etag = '"abc"'
    assert wanted_range("bytes=0-0", etag, 100, etag) == ByteRange(0, 1)
    assert wanted_range("bytes=0-0", None, 100, etag) == ByteRange(0, 1)
    for other in ('"xyz"', 'W/"abc"', "Thu, 26 Nov 2026 11:00:00 GMT"):
        assert wanted_range("bytes=0-0", other, 100, etag) is None
    assert wanted_range("bytes=500-", '"xyz"', 100, etag) is None  # the whole object, not 416


SIZE = 1000
ITEM = blob(SIZE, seed=b"ranges")
ETAG = f'"{ITEM.oid}"'


@dataclass(frozen=True)
class Case:
    headers: dict[str, str]
    status: int
    part: tuple[int, int] | None = None  # (first, last) of a 206
    method: str = "GET"


CASES = [
    Case({}, 200),
    Case({"Range": "bytes=0-0"}, 206, (0, 0)),
    Case({"Range": "bytes=10-19"}, 206, (10, 19)),
    Case({"Range": "bytes=0-"}, 206, (0, 999)),
    Case({"Range": "bytes=990-"}, 206, (990, 999)),
    Case({"Range": "bytes=990-5000"}, 206, (990, 999)),
    Case({"Range": "bytes=-5"}, 206, (995, 999)),
    Case({"Range": "bytes=-5000"}, 206, (0, 999)),
    Case({"Range": "BYTES=1-1"}, 206, (1, 1)),
    Case({"Range": "bytes=-0"}, 416),
    Case({"Range": "bytes=1000-"}, 416),
    Case({"Range": "bytes=5000-6000"}, 416),
    Case({"Range": "bytes=5-2"}, 200),
    Case({"Range": "bytes=2000-1000"}, 200),
    Case({"Range": "bytes=0-1,5-6"}, 200),
    Case({"Range": "bytes=0-1, 5-6"}, 200),
    Case({"Range": "bytes=-5,0-0"}, 200),
    Case({"Range": "items=0-1"}, 200),
    Case({"Range": "bytes=-"}, 200),
    Case({"Range": "bytes=abc"}, 200),
    Case({"Range": "bytes=1-2-3"}, 200),
    Case({"Range": "bytes=10-19", "If-Range": ETAG}, 206, (10, 19)),
    Case({"Range": "bytes=10-19", "If-Range": '"other"'}, 200),
    Case({"Range": "bytes=10-19", "If-Range": f"W/{ETAG}"}, 200),
    Case({"Range": "bytes=10-19", "If-Range": "Thu, 26 Nov 2026 11:00:00 GMT"}, 200),
    Case({"Range": "bytes=5000-", "If-Range": '"other"'}, 200),
    Case({}, 200, method="HEAD"),
    Case({"Range": "bytes=10-19"}, 206, (10, 19), method="HEAD"),
    Case({"Range": "bytes=-0"}, 416, method="HEAD"),
]


async def _answer(world: World, case: Case) -> tuple[int, dict[str, str | None], bytes]:
    (obj,) = await world.batch_ok("acme/game", "download", [ITEM], world.auth("root"))
    action = obj["actions"]["download"]
    response = await world.client.session.request(
        case.method, action["href"], headers={**action["header"], **case.headers}
    )
    names = ("Content-Range", "Content-Length", "Content-Type", "Accept-Ranges", "ETag")
    return response.status, {name: response.headers.get(name) for name in names}, await response.read()


def _expected(case: Case) -> tuple[int, str | None, bytes]:
    if case.status == 416:
        return 416, f"bytes */{SIZE}", b""
    first, last = case.part or (0, SIZE - 1)
    content_range = f"bytes {first}-{last}/{SIZE}" if case.part else None
    return case.status, content_range, ITEM.data[first : last + 1]


async def test_every_store_answers_every_range_alike(
    tmp_path: Path, s3_server: S3Server, aiohttp_client: AiohttpClient
) -> None:
    local = Settings(data_dir=tmp_path / "local", listen="127.0.0.1:0", fsync=False, buffer_size=64 * 1024)
    s3 = local.replace(
        data_dir=tmp_path / "s3",
        storage=f"s3://{s3_server.new_bucket()}/lfs",
        s3_endpoint_url=s3_server.endpoint,
        s3_path_style=True,
    )
    worlds = {"local": await open_world(local, aiohttp_client), "s3": await open_world(s3, aiohttp_client)}
    try:
        for world in worlds.values():
            await world.push("acme/game", [ITEM], world.auth("root"))
        wrong = []
        for case in CASES:
            answers = {store: await _answer(world, case) for store, world in worlds.items()}
            status, content_range, body = _expected(case)
            # HEAD announces the length GET would send (aiohttp leaves it out for an empty 416).
            length = None if (case.method, status) == ("HEAD", 416) else str(len(body))
            if case.method == "HEAD":
                body = b""
            for store, (got_status, headers, got_body) in answers.items():
                got = (got_status, headers["Content-Range"], headers["Content-Length"], got_body)
                if got != (status, content_range, length, body):
                    wrong.append(f"{store} {case}: {got_status} {headers} {len(got_body)} bytes")
            if answers["local"][:2] != answers["s3"][:2] or answers["local"][2] != answers["s3"][2]:
                wrong.append(f"local and S3 differ on {case}: {answers['local'][:2]} != {answers['s3'][:2]}")
        assert not wrong, "\n".join(wrong)
    finally:
        for world in worlds.values():
            await world.meta.close()


class VanishingStore(DelegatingStore):
    """Wraps the local store: each object's file disappears right after ``get`` has found it (a cleanup racing)."""

    async def get(self, oid: Oid) -> StoredObject | None:
        stored = await self.inner.get(oid)
        if stored is not None and stored.path is not None:
            stored.path.unlink()
        return stored


async def test_a_file_gone_between_lookup_and_send_is_an_lfs_404(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    settings = Settings(data_dir=tmp_path / "data", listen="127.0.0.1:0", fsync=False, buffer_size=64 * 1024)
    world = await open_world(settings, aiohttp_client, wrap_store=VanishingStore)
    try:
        await world.push("acme/game", [ITEM], world.auth("root"))
        (obj,) = await world.batch_ok("acme/game", "download", [ITEM], world.auth("root"))
        action = obj["actions"]["download"]
        await lfs_error(await world.client.session.get(action["href"], headers=action["header"]), 404)
    finally:
        await world.meta.close()
