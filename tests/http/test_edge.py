"""Client input at the edge, on every database: any bytes in Authorization, lock ids, paths and refs beyond what
the columns hold, lock path normalisation, and names compared byte for byte. Never a 5xx."""

from __future__ import annotations

import base64
import unicodedata
from typing import Any

from aiohttp import ClientResponse

from lfsd.http.media import LFS_JSON
from tests.http.raw import RawResponse, raw_request
from tests.support import LFS_HEADERS, World, basic, lfs_error

BATCH = "/acme/game.git/info/lfs/objects/batch"
LOCKS = "/acme/game.git/info/lfs/locks"
REALM = 'Basic realm="Git LFS"'


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


# Authorization values as bytes on the wire; aiohttp decodes them as UTF-8 with surrogateescape.
AUTHORIZATION_BYTES: dict[str, bytes] = {
    "basic-utf8": b"Basic \xc3\xa9",
    "bearer-undecodable": b"Bearer \xff",
    "basic-undecodable": b"Basic \xff\xfe\xfd",
    "scheme-latin1": b"B\xe4sic cm9vdDp4",
    "bearer-c1-control": b"Bearer lfsd_\xc2\x85" + b"x" * 40,
    "bearer-cesu-surrogate": b"Bearer lfsd_\xed\xa0\x80" + b"x" * 40,
    "basic-tab": b"Basic\t" + _b64(b"root:x"),
    "basic-payload-undecodable": b"Basic " + _b64(b"\xff:\xfe"),
    "basic-payload-nul-name": b"Basic " + _b64(b"ro\x00ot:secret"),
    "basic-payload-nul-secret": b"Basic " + _b64(b"root:se\x00cret"),
    "basic-payload-control-name": b"Basic " + _b64(b"ro\x1bot:secret"),
    "basic-payload-long-name": b"Basic " + _b64(b"r" * 101 + b":secret"),
    "basic-payload-huge-name": b"Basic " + _b64(b"r" * 2000 + b":secret"),
    "basic-payload-utf8-name": b"Basic " + _b64("rööt:secret".encode()),
    "basic-payload-surrogate-name": b"Basic " + _b64(b"\xed\xa0\x80:secret"),
    "basic-non-ascii-padding": b"Basic cm9vdDp4\xc3\xa9",
    "absurd-length": b"Bearer " + b"\xe9" * 4000,
    "only-scheme-8bit": b"\xff\xff\xff",
}


def _problem_401(response: RawResponse) -> str | None:
    """What is wrong with ``response`` as a 401, or None."""
    if response.status != 401 or response.content_type != LFS_JSON:
        return f"{response.status} {response.content_type}: {response.body[:200]!r}"
    body = response.lfs_json()
    if not body["message"] or body["request_id"] != response.headers["x-request-id"]:
        return f"bad body {body}"
    challenges = (response.headers.get("lfs-authenticate"), response.headers.get("www-authenticate"))
    return None if challenges == (REALM, REALM) else f"challenges {challenges}"


async def test_any_authorization_bytes_are_401_over_a_socket(world: World) -> None:
    await world.repo("acme/game")
    body = b'{"operation":"download","objects":[]}'
    problems = {}
    for name, value in AUTHORIZATION_BYTES.items():
        lfs = [(b"Accept", LFS_JSON.encode()), (b"Content-Type", LFS_JSON.encode())]
        batch = await raw_request(world.client, "POST", BATCH.encode(), [*lfs, (b"Authorization", value)], body)
        locks = await raw_request(world.client, "GET", LOCKS.encode(), [lfs[0], (b"Authorization", value)])
        for what, response in (("batch", batch), ("locks", locks)):
            if (problem := _problem_401(response)) is not None:
                problems[f"{name} {what}"] = problem
    assert not problems


async def test_control_bytes_in_a_header_are_refused_by_the_parser(world: World) -> None:
    """aiohttp's HTTP parser refuses these before lfsd sees them: a plain 400, never a 5xx or a traceback."""
    for value in (b"Bearer \x1b[2J", b"Bearer lfsd_\x7f", b"Basic \x00", b"Bearer \x01\x02"):
        response = await raw_request(world.client, "GET", LOCKS.encode(), [(b"Authorization", value)])
        assert response.status == 400 and b"Traceback" not in response.body, value


async def test_non_ascii_authorization_through_the_client_is_401(world: World) -> None:
    await world.repo("acme/game")
    values = ["Basic é", "Bearer é", "Basic " + base64.b64encode("é:x".encode()).decode() + "é", "Bearer lfsd_\u0085x"]
    for value in values:
        response = await world.client.get(LOCKS, headers={"Accept": LFS_JSON, "Authorization": value})
        await lfs_error(response, 401)
        assert response.headers["WWW-Authenticate"] == response.headers["LFS-Authenticate"] == REALM


async def _json(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == LFS_JSON
    body: dict[str, Any] = await response.json(content_type=LFS_JSON)
    return body


async def _create(world: World, body: object) -> ClientResponse:
    return await world.client.post(LOCKS, json=body, headers={**LFS_HEADERS, **world.auth("alice")})


async def _setup(world: World) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "write"})


async def test_lock_ids_outside_the_column_name_no_lock(world: World) -> None:
    await _setup(world)
    for lock_id in ("99999999999", "2147483648", "0", "9" * 18, "9" * 400, "00000000000000000001"):
        listed = await world.client.get(f"{LOCKS}?id={lock_id}", headers=world.auth("alice"))
        assert await _json(listed, 200) == {"locks": []}
        headers = {**LFS_HEADERS, **world.auth("alice")}
        await lfs_error(await world.client.post(f"{LOCKS}/{lock_id}/unlock", json={}, headers=headers), 404)


async def test_the_largest_lock_id_is_a_valid_lookup(world: World) -> None:
    await _setup(world)
    listed = await world.client.get(f"{LOCKS}?id={2**31 - 1}", headers=world.auth("alice"))
    assert await _json(listed, 200) == {"locks": []}


async def test_bad_path_filters_are_422(world: World) -> None:
    await _setup(world)
    for query in ("path=a%00b", "path=" + "p" * 1025, "path=/abs", "path=a/../b", "path=tab%09here", "path=a%0ab"):
        await lfs_error(await world.client.get(f"{LOCKS}?{query}", headers=world.auth("alice")), 422)


async def test_long_git_refs_are_stored_and_bad_refs_are_422(world: World) -> None:
    await _setup(world)
    # git allows ref names as long as the file system allows paths: far beyond 255 characters.
    long_ref = "refs/heads/" + "feature/" * 150 + "x"
    assert len(long_ref) > 1000
    await _json(await _create(world, {"path": "a.bin", "ref": {"name": long_ref}}), 201)
    await _json(await _create(world, {"path": "b.bin", "ref": {"name": "refs/heads/" + "é" * 4000}}), 201)
    for bad in ["refs/heads/a\x00b", "refs/heads/" + "x" * 4096, "refs/heads/new\nline", "refs/heads/\x7f"]:
        await lfs_error(await _create(world, {"path": "c.bin", "ref": {"name": bad}}), 422)
        verify = await world.client.post(
            LOCKS + "/verify", json={"ref": {"name": bad}}, headers={**LFS_HEADERS, **world.auth("alice")}
        )
        await lfs_error(verify, 422)
    listed = await _json(await world.client.get(LOCKS, headers=world.auth("alice")), 200)
    assert sorted(lock["path"] for lock in listed["locks"]) == ["a.bin", "b.bin"]


async def test_one_lock_per_file_whatever_the_normal_form_or_separator(world: World) -> None:
    await _setup(world)
    nfc = "art/h\u00e9ros/\u00c5ngstr\u00f6m.psd"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    lock = (await _json(await _create(world, {"path": nfd}), 201))["lock"]
    assert lock["path"] == nfc
    conflict = await _json(await _create(world, {"path": nfc}), 409)
    assert conflict["lock"] == lock
    for form in (nfc, nfd):
        found = await world.client.get(LOCKS, params={"path": form}, headers=world.auth("alice"))
        assert (await _json(found, 200))["locks"] == [lock]

    windows = (await _json(await _create(world, {"path": "dir\\sub\\file.bin"}), 201))["lock"]
    assert windows["path"] == "dir/sub/file.bin"
    assert (await _json(await _create(world, {"path": "dir/sub/file.bin"}), 409))["lock"] == windows
    found = await world.client.get(LOCKS, params={"path": "dir\\sub\\file.bin"}, headers=world.auth("alice"))
    assert (await _json(found, 200))["locks"] == [windows]


async def test_unusual_but_real_file_names_can_be_locked(world: World) -> None:
    await _setup(world)
    for path in ("no\u00a0break.psd", "zero\u200dwidth.psd", " spaced ", "x:y.txt", "\U0001f600.png", "a" * 1024):
        assert (await _json(await _create(world, {"path": path}), 201))["lock"]["path"] == path


async def test_lock_paths_are_judged_after_normalising(world: World) -> None:
    await _setup(world)
    # 2048 characters on the wire, 1024 once composed: it fits the column.
    composed = await _json(await _create(world, {"path": "e\u0301" * 1024}), 201)
    assert composed["lock"]["path"] == "\u00e9" * 1024
    for path in (
        "dir\\..\\..\\etc",
        "dir\\",
        "\\lead",
        "a\\\\b",
        "C:\\x",
        "C:",
        "a\u0085b",
        "a\u009bb",
        "a\x7fb",
        "a\rb",
    ):
        await lfs_error(await _create(world, {"path": path}), 422)


async def test_names_and_paths_compare_byte_for_byte(world: World) -> None:
    await world.user("alice", password="correct horse battery")
    await world.repo("acme/Game", grants={"alice": "read"})
    await world.repo("acme/game")  # a second repository, not a duplicate of acme/Game
    game = "/acme/Game.git/info/lfs/locks"
    await _json(await world.client.get(game, headers=basic("alice", "correct horse battery")), 200)
    for name in ("ALICE", "Alice", "alice ", "\u0101lice", "alic\u00e9"):
        await lfs_error(await world.client.get(game, headers=basic(name, "correct horse battery")), 401)
    await lfs_error(await world.client.get(LOCKS, headers=basic("alice", "correct horse battery")), 404)
    await world.user("alice ", password="another secret")  # differs from alice by a trailing space only
    await lfs_error(await world.client.get(game, headers=basic("alice ", "another secret")), 404)
