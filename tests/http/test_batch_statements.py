"""A batch runs a constant number of SQL statements, whatever the number of objects (up to one IN chunk)."""

from __future__ import annotations

from pathlib import Path

from lfsd.config import Settings
from tests.conftest import AiohttpClient, open_world
from tests.sql import statements
from tests.support import Blob, World, blob


async def _count(world: World, operation: str, items: list[Blob]) -> int:
    with statements() as seen:
        response = await world.batch("acme/game", operation, [i.spec() for i in items], world.auth("root"))
        assert response.status == 200, await response.text()
    return len(seen)


async def test_statements_per_batch_do_not_grow_with_objects(world: World) -> None:
    await world.repo("acme/game")
    await world.repo("acme/other")
    await _count(world, "download", [blob(10)])  # warm up what runs once per process
    few, many = [blob(100) for _ in range(2)], [blob(100) for _ in range(300)]
    # Uploads where nothing is known, where everything is held, and where other repositories hold the objects.
    assert await _count(world, "upload", few) == await _count(world, "upload", many)
    await world.push("acme/game", few + many, world.auth("root"))
    assert await _count(world, "upload", few) == await _count(world, "upload", many)
    assert await _count(world, "download", few) == await _count(world, "download", many)
    linked_few = await _statements_linking(world, few)
    linked_many = await _statements_linking(world, many)
    assert linked_few == linked_many


async def _statements_linking(world: World, items: list[Blob]) -> int:
    with statements() as seen:
        response = await world.batch("acme/other", "upload", [i.spec() for i in items], world.auth("root"))
        assert response.status == 200, await response.text()
    return len(seen)


async def test_a_linked_download_runs_no_sql_once_its_standing_is_known(world: World) -> None:
    """The signed link names the repository and oid, and its standing check is remembered: the index is not asked
    again per download (issue 17). Credentials still go through the index."""
    await world.repo("acme/game")
    items = [blob(100) for _ in range(3)]
    await world.push("acme/game", items, world.auth("root"))
    objects = await world.batch_ok("acme/game", "download", items, world.auth("root"))
    first = objects[0]["actions"]["download"]
    assert (await world.client.session.get(first["href"], headers=first["header"])).status == 200  # standing cached
    for obj, item in zip(objects[1:], items[1:], strict=True):
        action = obj["actions"]["download"]
        with statements() as seen:
            response = await world.client.session.get(action["href"], headers=action["header"])
            assert await response.read() == item.data
        assert seen == []


async def test_an_upload_batch_on_sqlite_is_five_trips_to_the_driver_thread(
    tmp_path: Path, aiohttp_client: AiohttpClient, trips: list[str]
) -> None:
    """Token, repository with grant, held and readable sizes (one trip), quota check, collector's touch: one trip to
    aiosqlite's thread each, whatever the number of objects (issue 17; was 21 for 100 new objects)."""
    world = await open_world(Settings(data_dir=tmp_path / "data", fsync=False), aiohttp_client)
    try:
        seen = trips
        # The first request with the token also writes its last use (once a minute): not a batch's own work.
        assert (await world.batch("acme/game", "upload", [blob(10).spec()], world.auth("root"))).status == 200
        for count in (1, 100, 600):
            seen.clear()
            response = await world.batch(
                "acme/game", "upload", [blob(10).spec() for _ in range(count)], world.auth("root")
            )
            assert response.status == 200, await response.text()
            assert seen == ["_transaction"] * 5
    finally:
        await world.meta.close()
