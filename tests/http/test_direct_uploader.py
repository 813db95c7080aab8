"""S3 direct mode: the verify that links a directly uploaded object records its uploader, as the PUT through lfsd
does."""

from __future__ import annotations

from lfsd.core.catalog import ObjectQuery, ObjectSort
from lfsd.core.repo import RepoPath
from lfsd.db.catalog import SqlObjectCatalog
from tests.http.test_direct_races import DirectWorld, Writer, direct_world
from tests.support import blob

__all__ = ["direct_world"]  # the fixture, shared with the race tests


async def test_a_verified_direct_upload_names_its_uploader(direct_world: DirectWorld) -> None:
    world = direct_world.world
    item = blob(3000, b"direct")
    writer = Writer(world, "alice", "acme/private", item, size=item.size, body=item.data)
    for step in writer.steps():
        await step()
    assert writer.verify_status == 200
    repo = await world.meta.repos.find(RepoPath.parse("acme/private"))
    assert repo is not None
    entries = await SqlObjectCatalog(world.meta.db).page(repo.id, ObjectQuery(ObjectSort.DATE, True, None, 10))
    assert [(entry.oid, entry.uploader) for entry in entries] == [(item.oid, "alice")]
