"""The File Locking API, in process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import ClientResponse

from lfsd.core.repo import RepoPath
from lfsd.http.media import LFS_JSON
from tests.support import LFS_HEADERS, World, lfs_error

BASE = "/acme/game.git/info/lfs/locks"


async def _setup(world: World) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.user("reader")
    await world.user("boss")
    await world.repo("acme/game", grants={"alice": "write", "bob": "write", "reader": "read", "boss": "admin"})


async def _post(world: World, url: str, body: object, user: str | None) -> ClientResponse:
    headers = {**LFS_HEADERS, **(world.auth(user) if user else {})}
    return await world.client.post(url, json=body, headers=headers)


async def _json(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == LFS_JSON
    body: dict[str, Any] = await response.json(content_type=LFS_JSON)
    return body


async def _lock(world: World, path: str, user: str) -> dict[str, Any]:
    lock: dict[str, Any] = (await _json(await _post(world, BASE, {"path": path}, user), 201))["lock"]
    return lock


async def test_create_list_verify_unlock(world: World) -> None:
    await _setup(world)
    response = await _post(world, BASE, {"path": "art/hero.psd", "ref": {"name": "refs/heads/main"}}, "alice")
    lock = (await _json(response, 201))["lock"]
    assert set(lock) == {"id", "path", "locked_at", "owner"}
    assert isinstance(lock["id"], str) and lock["path"] == "art/hero.psd" and lock["owner"] == {"name": "alice"}
    assert lock["locked_at"].endswith("Z") and len(lock["locked_at"]) == 20

    listed = await _json(await world.client.get(BASE, headers=world.auth("reader")), 200)
    assert listed == {"locks": [lock]}
    by_path = await _json(await world.client.get(BASE + "?path=art/hero.psd", headers=world.auth("bob")), 200)
    assert by_path["locks"] == [lock]
    by_id = await _json(await world.client.get(f"{BASE}?id={lock['id']}", headers=world.auth("bob")), 200)
    assert by_id["locks"] == [lock]
    none = await _json(await world.client.get(BASE + "?path=other", headers=world.auth("bob")), 200)
    assert none == {"locks": []}

    mine = await _json(await _post(world, BASE + "/verify", {}, "alice"), 200)
    assert mine == {"ours": [lock], "theirs": []}
    theirs = await _json(await _post(world, BASE + "/verify", {"ref": {"name": "refs/heads/main"}}, "bob"), 200)
    assert theirs == {"ours": [], "theirs": [lock]}

    unlocked = await _json(await _post(world, f"{BASE}/{lock['id']}/unlock", {}, "alice"), 200)
    assert unlocked == {"lock": lock}
    assert await _json(await world.client.get(BASE, headers=world.auth("alice")), 200) == {"locks": []}


async def test_second_lock_on_a_path_is_409_with_the_existing_lock(world: World) -> None:
    await _setup(world)
    first = await _lock(world, "a.bin", "alice")
    body = await _json(await _post(world, BASE, {"path": "a.bin"}, "bob"), 409)
    assert body["lock"] == first and body["message"] and body["request_id"]


async def test_unlock_rules(world: World) -> None:
    await _setup(world)
    lock = await _lock(world, "a.bin", "alice")
    url = f"{BASE}/{lock['id']}/unlock"
    await lfs_error(await _post(world, url, {}, "bob"), 403)
    await lfs_error(await _post(world, url, {"force": True}, "bob"), 403)  # write is not admin
    await lfs_error(await _post(world, url, {}, "reader"), 403)
    await lfs_error(await _post(world, url, {"force": "yes"}, "boss"), 422)
    assert (await _json(await _post(world, url, {"force": True}, "boss"), 200))["lock"] == lock
    await lfs_error(await _post(world, url, {}, "alice"), 404)
    await lfs_error(await _post(world, f"{BASE}/abc/unlock", {}, "alice"), 404)


async def test_permissions(world: World) -> None:
    await _setup(world)
    await world.user("stranger")
    await lfs_error(await _post(world, BASE, {"path": "x"}, "reader"), 403)
    await lfs_error(await _post(world, BASE, {"path": "x"}, "stranger"), 404)
    await lfs_error(await _post(world, BASE, {"path": "x"}, None), 401)
    await lfs_error(await world.client.get(BASE), 401)
    await lfs_error(await _post(world, BASE + "/verify", {}, "reader"), 403)
    await lfs_error(await world.client.get(BASE, headers=world.auth("stranger")), 404)


async def test_public_repository_locks_are_listable_anonymously(world: World) -> None:
    await world.user("alice")
    await world.repo("acme/open", public=True, grants={"alice": "write"})
    await _json(await _post(world, "/acme/open.git/info/lfs/locks", {"path": "x"}, "alice"), 201)
    listed = await _json(await world.client.get("/acme/open.git/info/lfs/locks"), 200)
    assert [lock["path"] for lock in listed["locks"]] == ["x"]


async def test_another_repositorys_lock_id_is_404(world: World) -> None:
    await _setup(world)
    await world.repo("acme/other", grants={"alice": "write"})
    lock = await _lock(world, "a.bin", "alice")
    await lfs_error(await _post(world, f"/acme/other.git/info/lfs/locks/{lock['id']}/unlock", {}, "alice"), 404)
    other = await _json(
        await world.client.get(f"/acme/other.git/info/lfs/locks?id={lock['id']}", headers=world.auth("alice")), 200
    )
    assert other == {"locks": []}


async def test_locking_switched_off_answers_404(world: World) -> None:
    await _setup(world)
    repo = await world.meta.repos.find(RepoPath("acme/game"))
    assert repo is not None
    await world.meta.repos.set_locking(repo, False)
    await lfs_error(await _post(world, BASE + "/verify", {}, "alice"), 404)
    await lfs_error(await _post(world, BASE, {"path": "x"}, "alice"), 404)
    await lfs_error(await world.client.get(BASE, headers=world.auth("alice")), 404)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs/path",
        "../up",
        "a/../b",
        "a/./b",
        "a//b",
        "nul\x00byte",
        "C:/windows",
        "\\\\server\\x",
        "x" * 1025,
        7,
        None,
        "tab\there",
    ],
)
async def test_bad_lock_paths_are_422_and_change_nothing(world: World, path: object) -> None:
    await _setup(world)
    await lfs_error(await _post(world, BASE, {"path": path}, "alice"), 422)
    assert await _json(await world.client.get(BASE, headers=world.auth("alice")), 200) == {"locks": []}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{", LFS_JSON, 400),
        (b"[]", LFS_JSON, 422),
        (b"{}", LFS_JSON, 422),
        (b'{"path": "x"}', "application/json", 415),
        (b'{"path": "x"}', "", 415),
    ],
)
async def test_bad_create_requests(world: World, body: bytes, content_type: str, status: int) -> None:
    await _setup(world)
    headers = {"Accept": LFS_JSON, "Content-Type": content_type, **world.auth("alice")}
    await lfs_error(await world.client.post(BASE, data=body, headers=headers), status)


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1.5", "100000", "99999999999999999999", "²", "٣"])
async def test_bad_limits_are_422(world: World, limit: str) -> None:
    await _setup(world)
    await lfs_error(await world.client.get(f"{BASE}?limit={limit}", headers=world.auth("alice")), 422)
    await lfs_error(await _post(world, BASE + "/verify", {"limit": limit}, "alice"), 422)


@pytest.mark.parametrize("limit", [-1, 0, 10**9, 1.5, True, [1]])
async def test_bad_json_limits_are_422(world: World, limit: object) -> None:
    await _setup(world)
    await lfs_error(await _post(world, BASE + "/verify", {"limit": limit}, "alice"), 422)


@pytest.mark.parametrize("cursor", ["bogus", "12", "12.AAAAAAAAAAAAAAAAAAAAAA", "-1.x", 7, "²."])
async def test_cursors_never_issued_are_refused(world: World, cursor: object) -> None:
    await _setup(world)
    await _lock(world, "a", "alice")
    if isinstance(cursor, str):
        await lfs_error(await world.client.get(f"{BASE}?cursor={cursor}", headers=world.auth("alice")), 422)
    await lfs_error(await _post(world, BASE + "/verify", {"cursor": cursor}, "alice"), 422)


async def test_cursor_of_another_repository_is_refused(world: World) -> None:
    await _setup(world)
    await world.repo("acme/other", grants={"alice": "write"})
    for i in range(3):
        await _json(await _post(world, "/acme/other.git/info/lfs/locks", {"path": f"p{i}"}, "alice"), 201)
    page = await _json(
        await world.client.get("/acme/other.git/info/lfs/locks?limit=1", headers=world.auth("alice")), 200
    )
    cursor = page["next_cursor"]
    await lfs_error(await world.client.get(f"{BASE}?cursor={cursor}", headers=world.auth("alice")), 422)


async def test_paging_with_concurrent_changes_loses_and_repeats_nothing(world: World) -> None:
    await _setup(world)
    original = {(await _lock(world, f"file-{i:03}", "alice"))["id"] for i in range(250)}
    seen: list[str] = []
    removed: set[str] = set()
    added: set[str] = set()
    cursor: str | None = None
    round_ = 0
    while True:
        url = f"{BASE}?limit=40" + (f"&cursor={cursor}" if cursor else "")
        page = await _json(await world.client.get(url, headers=world.auth("bob")), 200)
        seen += [lock["id"] for lock in page["locks"]]
        # Between pages: unlock one lock not seen yet, add a new one.
        pending = sorted(original - set(seen) - removed, key=int)
        if pending:
            victim = pending[-1]
            await _json(await _post(world, f"{BASE}/{victim}/unlock", {}, "alice"), 200)
            removed.add(victim)
        added.add((await _lock(world, f"new-{round_}", "bob"))["id"])
        round_ += 1
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a lock was listed twice"
    assert original - removed <= set(seen), "a lock that stayed was skipped"
    assert not removed & set(seen), "a lock unlocked before its page was listed"
    assert added - set(seen) <= {max(added, key=int)}  # only the lock added after the last page is unseen


async def test_verify_pages(world: World) -> None:
    await _setup(world)
    for i in range(5):
        await _lock(world, f"a{i}", "alice" if i % 2 else "bob")
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    body: dict[str, Any] = {"limit": 2}
    while True:
        page = await _json(await _post(world, BASE + "/verify", body, "alice"), 200)
        ours += page["ours"]
        theirs += page["theirs"]
        if "next_cursor" not in page:
            break
        body = {"limit": 2, "cursor": page["next_cursor"]}
    assert sorted(lock["path"] for lock in ours) == ["a1", "a3"]
    assert sorted(lock["path"] for lock in theirs) == ["a0", "a2", "a4"]


async def test_concurrent_creates_in_process_yield_one_winner(world: World) -> None:
    await _setup(world)
    responses = await asyncio.gather(*(_post(world, BASE, {"path": "contested"}, "alice") for _ in range(20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 19
    (winner,) = [(await r.json(content_type=LFS_JSON))["lock"] for r in responses if r.status == 201]
    for response in responses:
        if response.status == 409:
            assert (await response.json(content_type=LFS_JSON))["lock"] == winner
