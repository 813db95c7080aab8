"""A table of bad requests. For every one: the expected 4xx, an LFS JSON error, nothing stored, no database change,
no 5xx and no traceback; on SQLite case by case, and the whole table again on MariaDB and PostgreSQL, whose columns
enforce their lengths, ranges and characters (where SQLite does not)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lfsd.config import Settings
from lfsd.db.tables import metadata
from lfsd.http.media import LFS_JSON
from tests.conftest import AiohttpClient, migrated_url, open_world
from tests.databases import Server
from tests.support import World, lfs_error

BATCH = "/acme/game.git/info/lfs/objects/batch"
LOCKS = "/acme/game.git/info/lfs/locks"
GOOD_OID = hashlib.sha256(b"hello").hexdigest()
LFS = {"Accept": LFS_JSON, "Content-Type": LFS_JSON}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(LFS))
    auth: bool = True
    object_error: int | None = None  # a 200 batch whose one object carries this error code

    def __str__(self) -> str:
        return self.name


def _batch(objects: Any, operation: Any = "upload", **extra: Any) -> bytes:
    return json.dumps({"operation": operation, "objects": objects, **extra}).encode()


VALID = _batch([{"oid": GOOD_OID, "size": 5}])
CASES: list[Case] = []

# Malformed and truncated JSON.
for i, raw in enumerate([b"{", b"[", b"nul", b'{"a":1,}', b"{'single': 1}", b"\xff\xfe\x00", b'{"operation":', b"}"]):
    CASES.append(Case(f"malformed-json-{i}", "POST", BATCH, 400, raw))
for cut in (1, 5, 12, 20, 30, 40, 55, len(VALID) - 2, len(VALID) - 1):
    CASES.append(Case(f"truncated-json-at-{cut}", "POST", BATCH, 400, VALID[:cut]))
CASES.append(Case("empty-body", "POST", BATCH, 400, b""))
CASES.append(Case("deeply-nested", "POST", BATCH, 400, b"[" * 50_000 + b"]" * 50_000))
CASES.append(Case("json-not-object", "POST", BATCH, 422, b"[1, 2, 3]"))
CASES.append(Case("json-string", "POST", BATCH, 422, b'"upload"'))
CASES.append(Case("objects-not-list", "POST", BATCH, 422, b'{"operation":"upload","objects":{}}'))
CASES.append(Case("objects-missing", "POST", BATCH, 422, b'{"operation":"upload"}'))
CASES.append(Case("object-not-dict", "POST", BATCH, 422, _batch([GOOD_OID])))
CASES.append(Case("huge-body", "POST", BATCH, 413, b" " * (5 * 1024 * 1024) + VALID))
CASES.append(
    Case("too-many-objects", "POST", BATCH, 413, _batch([{"oid": f"{i:064x}", "size": 1} for i in range(1001)]))
)
CASES.append(
    Case("enormous-string", "POST", BATCH, 422, _batch([{"oid": GOOD_OID, "size": 5}], operation="u" * 3_000_000))
)

# Media types.
for i, content_type in enumerate(
    [
        "text/plain",
        "application/json",
        "",
        "multipart/form-data",
        "application/vnd.git-lfs",
        "application/vnd.git-lfs+jsonx",
        "application/x-www-form-urlencoded",
    ]
):
    CASES.append(
        Case(f"content-type-{i}", "POST", BATCH, 415, VALID, {"Accept": LFS_JSON, "Content-Type": content_type})
    )
for i, accept in enumerate(["text/html", "image/png", "application/json", "text/*"]):
    CASES.append(Case(f"accept-{i}", "POST", BATCH, 406, VALID, {"Accept": accept, "Content-Type": LFS_JSON}))

# Operations, transfers and hash algorithms.
for i, operation in enumerate(["delete", "", None, 5, "UPLOAD", ["upload"]]):
    CASES.append(Case(f"operation-{i}", "POST", BATCH, 422, _batch([], operation=operation)))
for i, transfers in enumerate([["tus"], [], ["ssh", "lfs-standalone-file"]]):
    CASES.append(Case(f"transfers-{i}", "POST", BATCH, 422, _batch([], transfers=transfers)))
CASES.append(Case("transfers-not-list", "POST", BATCH, 422, _batch([], transfers="basic")))
CASES.append(Case("hash-algo-md5", "POST", BATCH, 409, _batch([], hash_algo="md5")))

# Invalid oids and sizes inside a valid batch: 200 with a per-object 422, as the spec says.
BAD_OIDS = {
    "upper": GOOD_OID.upper(),
    "63": GOOD_OID[:63],
    "65": GOOD_OID + "a",
    "non-hex": "g" * 64,
    "dotdot": "../" + GOOD_OID[3:],
    "nul": GOOD_OID[:63] + "\x00",
    "cyrillic-a": "а" * 64,
    "fullwidth": "０" * 64,
    "empty": "",
    "space": " " + GOOD_OID[1:],
    "number": 12345,
    "null": None,
    "percent": "%2e%2e" + GOOD_OID[6:],
}
for name, oid in BAD_OIDS.items():
    CASES.append(Case(f"batch-oid-{name}", "POST", BATCH, 200, _batch([{"oid": oid, "size": 5}]), object_error=422))
BAD_SIZES = {
    "negative": -1,
    "fraction": 1.5,
    "string": "10",
    "huge": 10**30,
    "2^64": 2**64,
    "null": None,
    "true": True,
    "list": [1],
    "nan-ish": "NaN",
}
for name, size in BAD_SIZES.items():
    CASES.append(
        Case(f"batch-size-{name}", "POST", BATCH, 200, _batch([{"oid": GOOD_OID, "size": size}]), object_error=422)
    )

# Transfer URLs with bad oids.
for name, oid in [
    ("upper", GOOD_OID.upper()),
    ("63", GOOD_OID[:63]),
    ("65", GOOD_OID + "a"),
    ("non-hex", "z" * 64),
    ("encoded-dotdot", "%2e%2e%2f" + GOOD_OID[9:]),
    ("nul", GOOD_OID[:63] + "%00"),
]:
    CASES.append(Case(f"get-oid-{name}", "GET", f"/acme/game.git/info/lfs/objects/{oid}", 422, headers={}))
    CASES.append(Case(f"put-oid-{name}", "PUT", f"/acme/game.git/info/lfs/objects/{oid}", 422, b"hello", headers={}))

# Repository paths.
for name, path in [
    ("dotdot", "/acme/../etc"),
    ("double-slash", "/acme//game"),
    ("encoded-dotdot", "/acme/%2e%2e"),
    ("backslash", "/acme\\game"),
    ("control", "/acme/ga%01me"),
    ("single-segment", "/game"),
    ("hidden", "/acme/.git"),
    ("long", "/acme/" + "x" * 300),
    ("too-deep", "/a/b/c/d/e/f/g/h/i"),
    ("tab", "/acme/ga%09me"),
    ("newline-encoded", "/acme/ga%0ame"),
]:
    CASES.append(Case(f"repo-{name}-batch", "POST", f"{path}/info/lfs/objects/batch", 404, VALID))
    CASES.append(Case(f"repo-{name}-locks", "GET", f"{path}/info/lfs/locks", 404, headers={"Accept": LFS_JSON}))

# Absurd sizes of URL and headers.
CASES.append(Case("absurd-path", "GET", "/" + "a" * 5000 + "/info/lfs/locks", 414, headers={}))
CASES.append(Case("absurd-query", "GET", LOCKS + "?path=" + "x" * 5000, 414, headers={}))
CASES.append(Case("absurd-header", "GET", LOCKS, 431, headers={"X-Junk": "y" * 6000}))
CASES.append(Case("many-headers", "GET", LOCKS, 431, headers={f"X-H{i}": "z" * 200 for i in range(30)}))

# Credentials.
for i, value in enumerate(
    [
        "Basic !!!",
        "Basic " + "QQ==",
        "Bearer",
        "Bearer lfsd_nope",
        "Digest x",
        "Basic " + "A" * 3000,
        "LFSD-Link v1.1.1.1.1.x",
    ]
):
    CASES.append(Case(f"auth-{i}", "POST", BATCH, 401, VALID, {**LFS, "Authorization": value}, auth=False))
for name, credentials in [
    ("nul-in-name", b"ro\x00ot:secret"),
    ("control-in-name", b"ro\x1bot:secret"),
    ("c1-in-name", "ro\u0085ot:secret".encode()),
    ("name-past-the-column", b"r" * 101 + b":secret"),
    ("name-with-token-of-other-case", b"ROOT:lfsd_" + b"x" * 43),
    ("undecodable", b"\xff\xfe:\xfd"),
]:
    value = "Basic " + base64.b64encode(credentials).decode()
    CASES.append(Case(f"auth-basic-{name}", "POST", BATCH, 401, VALID, {**LFS, "Authorization": value}, auth=False))
for i, value in enumerate(["Basic é", "Bearer é", "Bearer lfsd_\u0085" + "x" * 40, "Basic cm9vdDp4\u00e9"]):
    CASES.append(Case(f"auth-non-ascii-{i}", "POST", BATCH, 401, VALID, {**LFS, "Authorization": value}, auth=False))
CASES.append(Case("anonymous-upload", "POST", BATCH, 401, VALID, auth=False))

# Transfers with bodies that lie.
CASES.append(
    Case("put-no-auth", "PUT", f"/acme/game.git/info/lfs/objects/{GOOD_OID}", 401, b"hello", headers={}, auth=False)
)
CASES.append(
    Case(
        "put-forged-link",
        "PUT",
        f"/acme/game.git/info/lfs/objects/{GOOD_OID}",
        401,
        b"hello",
        headers={"Authorization": "LFSD-Link v1.1.1.5.99999999999.AAAA"},
        auth=False,
    )
)
CASES.append(Case("put-wrong-content", "PUT", f"/acme/game.git/info/lfs/objects/{GOOD_OID}", 422, b"hellp", headers={}))
CASES.append(
    Case("put-longer-than-oid", "PUT", f"/acme/game.git/info/lfs/objects/{GOOD_OID}", 422, b"hello!", headers={})
)
CASES.append(
    Case("put-shorter-than-oid", "PUT", f"/acme/game.git/info/lfs/objects/{GOOD_OID}", 422, b"hell", headers={})
)

# Locks.
lock_paths: list[tuple[str, object]] = [
    ("empty", ""),
    ("absolute", "/etc/passwd"),
    ("dotdot", "a/../../b"),
    ("nul", "a\x00b"),
    ("number", 7),
    ("too-long", "p" * 2000),
    ("windows-drive", "C:/x"),
    ("control", "a\x07b"),
    ("c1-control", "a\x85b"),
    ("del", "a\x7fb"),
    ("windows-dotdot", "dir\\..\\..\\etc"),
    ("windows-absolute", "\\etc\\passwd"),
    ("windows-drive-backslash", "C:\\x"),
    ("trailing-slash", "dir/"),
    ("nfc-too-long", "\u0958" * 1000),  # 1000 characters sent, 2000 once normalised (U+0958 has no NFC form)
]
for name, lock_path in lock_paths:
    CASES.append(Case(f"lock-path-{name}", "POST", LOCKS, 422, json.dumps({"path": lock_path}).encode()))
for name, limit in [("negative", "-1"), ("zero", "0"), ("huge", "100000000"), ("word", "ten"), ("fraction", "1.5")]:
    CASES.append(Case(f"lock-limit-{name}", "GET", f"{LOCKS}?limit={limit}", 422, headers={"Accept": LFS_JSON}))
    CASES.append(Case(f"verify-limit-{name}", "POST", f"{LOCKS}/verify", 422, json.dumps({"limit": limit}).encode()))
for name, cursor in [("never-issued", "123.AAAAAAAAAAAAAAAAAAAAAA"), ("junk", "junk"), ("negative", "-5.x")]:
    CASES.append(Case(f"lock-cursor-{name}", "GET", f"{LOCKS}?cursor={cursor}", 422, headers={"Accept": LFS_JSON}))
for name, query in [
    ("nul", "a%00b"),
    ("absolute", "/etc/passwd"),
    ("dotdot", "a/../b"),
    ("newline", "a%0ab"),
    ("too-long", "p" * 1025),
]:
    CASES.append(Case(f"lock-filter-{name}", "GET", f"{LOCKS}?path={query}", 422, headers={"Accept": LFS_JSON}))
for name, ref in [("nul", "refs/heads/a\x00b"), ("too-long", "refs/heads/" + "x" * 4096), ("newline", "a\nb")]:
    body = json.dumps({"path": "ok.bin", "ref": {"name": ref}}).encode()
    CASES.append(Case(f"lock-ref-{name}", "POST", LOCKS, 422, body))
    CASES.append(
        Case(f"verify-ref-{name}", "POST", f"{LOCKS}/verify", 422, json.dumps({"ref": {"name": ref}}).encode())
    )
CASES.append(Case("lock-ref-not-string", "POST", LOCKS, 422, b'{"path": "ok.bin", "ref": {"name": 5}}'))
for lock_id in ("99999999999", "2147483648", "0", "9" * 30):
    CASES.append(Case(f"unlock-id-{lock_id[:12]}", "POST", f"{LOCKS}/{lock_id}/unlock", 404, b"{}"))
CASES.append(Case("lock-malformed", "POST", LOCKS, 400, b'{"path": '))
CASES.append(
    Case("lock-media-type", "POST", LOCKS, 415, b'{"path": "a"}', {"Accept": LFS_JSON, "Content-Type": "text/plain"})
)
CASES.append(Case("unlock-unknown", "POST", f"{LOCKS}/999999/unlock", 404, b"{}"))
CASES.append(Case("unlock-not-a-number", "POST", f"{LOCKS}/abc/unlock", 404, b"{}"))
CASES.append(Case("unlock-force-string", "POST", f"{LOCKS}/1/unlock", 422, b'{"force": "yes"}'))
CASES.append(Case("batch-get", "GET", BATCH, 405, headers={}))


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 100
    assert len({case.name for case in CASES}) == len(CASES)


def _settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    # A header limit below aiohttp's own, so that lfsd's 431 is what answers.
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, fsync=False, buffer_size=64 * 1024, max_header_bytes=4096
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture
async def corpus_world(world: World) -> AsyncIterator[World]:
    await world.repo("acme/game")
    yield world


async def _counts(world: World) -> dict[str, int]:
    async with world.meta.db.transaction() as conn:
        return {
            table.name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for table in metadata.sorted_tables
        }


def _stored(settings: Settings) -> list[Path]:
    return [p for p in settings.data_dir.rglob("*") if p.is_file() and p.parent.name != "data"]


async def _check(case: Case, world: World, settings: Settings) -> None:
    before = await _counts(world)
    files_before = _stored(settings)
    headers = {**case.headers, **(world.auth("root") if case.auth else {})}
    payload: bytes | io.BytesIO | None = case.body
    if case.body is not None and len(case.body) > 1024 * 1024:
        payload = io.BytesIO(case.body)  # aiohttp's client warns about large raw byte bodies
    response = await world.client.request(
        case.method, case.path, data=payload, headers=headers, skip_auto_headers={"Content-Type"}
    )
    if case.object_error is not None:
        assert response.status == 200, await response.text()
        body = await response.json(content_type=LFS_JSON)
        assert [obj["error"]["code"] for obj in body["objects"]] == [case.object_error]
        assert "actions" not in body["objects"][0]
    else:
        await lfs_error(response, case.status)
    if response.status == 401:
        challenges = (response.headers.get("LFS-Authenticate"), response.headers.get("WWW-Authenticate"))
        assert challenges == ('Basic realm="Git LFS"',) * 2, challenges
    assert await _counts(world) == before, "the database changed"
    assert _stored(settings) == files_before, "bytes were stored"


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_request(case: Case, corpus_world: World, settings: Settings) -> None:
    await _check(case, corpus_world, settings)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
async def test_the_whole_corpus_on_database_servers(
    backend: str,
    tmp_path: Path,
    migrated_databases: dict[str, tuple[Server, str]],
    aiohttp_client: AiohttpClient,
) -> None:
    """One world for the whole table: a world per case would cost a second each on a server."""
    settings = _settings(tmp_path, migrated_url(backend, migrated_databases))
    world = await open_world(settings, aiohttp_client)
    failures: dict[str, str] = {}
    try:
        for case in CASES:
            try:
                await _check(case, world, settings)
            except AssertionError as exc:
                failures[case.name] = str(exc)[:300]
    finally:
        await world.meta.close()
    assert not failures


async def test_headers_beyond_the_http_parser_limit_are_refused_without_a_5xx(corpus_world: World) -> None:
    """aiohttp's parser refuses these before lfsd sees them: a plain 400, never a 5xx or a traceback."""
    response = await corpus_world.client.get(LOCKS, headers={"X-Junk": "y" * 40_000})
    assert response.status == 400
    assert "Traceback" not in await response.text()
