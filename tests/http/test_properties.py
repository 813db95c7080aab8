"""Property-based: generated requests to the batch and lock endpoints never give a 5xx, always answer in LFS JSON,
and change nothing unless they are accepted; on SQLite, MariaDB and PostgreSQL, with any bytes in any header."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lfsd.core.repo import RepoPath
from lfsd.db.tables import metadata
from lfsd.http.media import LFS_JSON
from tests.http.raw import raw_request
from tests.support import World

BATCH = "/acme/game.git/info/lfs/objects/batch"
LOCKS = "/acme/game.git/info/lfs/locks"

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
oids = st.text("0123456789abcdefABCDEF./\x00é", min_size=0, max_size=70) | json_values
sizes = st.integers(min_value=-(2**70), max_value=2**70) | json_values
batch_objects = st.lists(st.fixed_dictionaries({"oid": oids, "size": sizes}), max_size=5) | json_values
batch_bodies = st.one_of(
    st.fixed_dictionaries(
        {"operation": st.sampled_from(["upload", "download", "delete", ""]) | json_values, "objects": batch_objects},
        optional={
            "transfers": st.lists(st.sampled_from(["basic", "tus", ""]), max_size=3) | json_values,
            "ref": st.none() | st.fixed_dictionaries({"name": st.text(max_size=20)}) | json_values,
            "hash_algo": st.sampled_from(["sha256", "sha512"]) | json_values,
        },
    ).map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda body: json.dumps(body).encode()),
    st.binary(max_size=120),
)
lock_bodies = st.one_of(
    st.fixed_dictionaries(
        {"path": st.text(max_size=40) | json_values},
        optional={"ref": json_values, "force": json_values, "cursor": json_values, "limit": json_values},
    ).map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda body: json.dumps(body).encode()),
    st.binary(max_size=80),
)
query_values = st.text(max_size=30)
# Per database: the three backends together run 3x these (about 40 s in all on a small machine).
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# Header values as the wire may carry them: every byte an HTTP parser lets through (HTAB, SP, visible ASCII and
# obs-text 0x80-0xFF). CR, LF, NUL and other controls end or break the request in aiohttp's parser, which answers
# 400 before lfsd sees it (tests/http/test_edge.py checks that).
_wire_bytes = st.binary(max_size=60).map(
    lambda raw: bytes(b for b in raw if b == 0x09 or 0x20 <= b <= 0x7E or b >= 0x80)
)
# A meaningful start followed by anything, so that generated values get past the first check of each header.
_starts = st.sampled_from([b"", b"Basic ", b"Bearer ", b"LFSD-Link ", b"application/vnd.git-lfs+json", b"bytes="])
header_bytes = st.builds(bytes.__add__, _starts, _wire_bytes)
HEADER_NAMES = (b"Authorization", b"Accept", b"Content-Type", b"User-Agent", b"X-Request-Id", b"Range", b"X-Other")
GOOD_OID = hashlib.sha256(b"hello").hexdigest()
ENDPOINTS: dict[str, tuple[str, bytes, bytes]] = {
    "batch": (
        "POST",
        BATCH.encode(),
        json.dumps({"operation": "download", "objects": [{"oid": GOOD_OID, "size": 5}]}).encode(),
    ),
    "locks": ("GET", LOCKS.encode() + b"?path=a.bin&limit=5", b""),
    "verify": ("POST", LOCKS.encode() + b"/verify", b"{}"),
    "unlock": ("POST", LOCKS.encode() + b"/1/unlock", b"{}"),
    "download": ("GET", f"/acme/game.git/info/lfs/objects/{GOOD_OID}".encode(), b""),
}


async def _counts(world: World) -> dict[str, int]:
    async with world.meta.db.transaction() as conn:
        return {
            table.name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for table in metadata.sorted_tables
        }


async def _lfs_json(response: Any) -> dict[str, Any]:
    assert response.status < 500, await response.text()
    assert response.content_type == LFS_JSON, await response.text()
    body: dict[str, Any] = await response.json(content_type=LFS_JSON)
    return body


async def _ready(world: World) -> None:
    if await world.meta.repos.find(RepoPath("acme/game")) is None:
        await world.repo("acme/game")


@PROPERTY_SETTINGS
@given(body=batch_bodies)
async def test_batch_requests(world: World, body: bytes) -> None:
    await _ready(world)
    before = await _counts(world)
    response = await world.client.post(
        BATCH, data=body, headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON, **world.auth("root")}
    )
    payload = await _lfs_json(response)
    assert response.status in (200, 400, 409, 413, 422), response.status
    if response.status == 200:
        for obj in payload["objects"]:
            assert "error" in obj or "actions" in obj or set(obj) <= {"oid", "size", "authenticated"}
            if "error" in obj:
                assert obj["error"]["code"] in (404, 422) and "actions" not in obj
    else:
        assert payload["message"] and payload["request_id"]
    assert await _counts(world) == before  # a batch request alone stores and links nothing here


@PROPERTY_SETTINGS
@given(body=lock_bodies)
async def test_lock_requests(world: World, body: bytes) -> None:
    await _ready(world)
    before = await _counts(world)
    response = await world.client.post(
        LOCKS, data=body, headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON, **world.auth("root")}
    )
    payload = await _lfs_json(response)
    after = await _counts(world)
    if response.status == 201:
        assert after["locks"] == before["locks"] + 1
        path = payload["lock"]["path"]
        assert path and not path.startswith("/") and ".." not in path.split("/") and "\x00" not in path
    else:
        assert response.status in (400, 409, 422), response.status
        assert after == before


@PROPERTY_SETTINGS
@given(body=lock_bodies)
async def test_lock_verify_and_unlock_requests(world: World, body: bytes) -> None:
    await _ready(world)
    before = await _counts(world)
    headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON, **world.auth("root")}
    response = await world.client.post(LOCKS + "/verify", data=body, headers=headers)
    await _lfs_json(response)
    assert response.status in (200, 400, 422), response.status
    response = await world.client.post(LOCKS + "/1/unlock", data=body, headers=headers)
    await _lfs_json(response)
    assert response.status in (400, 404, 422), response.status
    assert await _counts(world) == before


@PROPERTY_SETTINGS
@given(path=query_values, lock_id=query_values, cursor=query_values, limit=query_values)
async def test_lock_listing_queries(world: World, path: str, lock_id: str, cursor: str, limit: str) -> None:
    await _ready(world)
    params = {"path": path, "id": lock_id, "cursor": cursor, "limit": limit}
    response = await world.client.get(LOCKS, params=params, headers={"Accept": LFS_JSON, **world.auth("root")})
    payload = await _lfs_json(response)
    assert response.status in (200, 422), response.status
    if response.status == 200:
        assert isinstance(payload["locks"], list)


def _root_basic(world: World) -> bytes:
    return b"Basic " + base64.b64encode(f"root:{world.tokens['root']}".encode())


@settings(PROPERTY_SETTINGS, max_examples=150)  # cheap: one request without a body to parse
@given(
    endpoint=st.sampled_from(list(ENDPOINTS)),
    values=st.fixed_dictionaries({}, optional={name: header_bytes for name in HEADER_NAMES}),
    authenticated=st.booleans(),
)
async def test_any_header_bytes(world: World, endpoint: str, values: dict[bytes, bytes], authenticated: bool) -> None:
    await _ready(world)
    before = await _counts(world)
    method, target, body = ENDPOINTS[endpoint]
    headers = list(values.items())
    if authenticated and b"Authorization" not in values:
        headers.append((b"Authorization", _root_basic(world)))
    response = await raw_request(world.client, method, target, headers, body)
    assert response.status < 500, (response.status, response.body[:300])
    payload = response.lfs_json()
    if response.status >= 400:
        assert payload["message"] and payload["request_id"] == response.headers["x-request-id"]
    if response.status == 401:
        assert response.headers["www-authenticate"] == response.headers["lfs-authenticate"]
    assert await _counts(world) == before
