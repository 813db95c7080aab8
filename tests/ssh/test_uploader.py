"""SSH ``put-object`` records its session's user as the object's uploader, as the HTTP PUT does."""

from __future__ import annotations

from pathlib import Path

from lfsd.core.catalog import ObjectQuery, ObjectSort
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.db.catalog import SqlObjectCatalog
from lfsd.resources import open_metadata
from tests.ssh.test_protocol import BODY, OID, QUIT, VERSION, put, upload_batch
from tests.ssh.wire import site


async def test_put_object_records_the_uploader(tmp_path: Path) -> None:
    async with site(tmp_path) as s:
        packets = await s.run(
            "alice", "acme/game", Operation.UPLOAD, VERSION + upload_batch() + put(OID, len(BODY), BODY) + QUIT
        )
        assert "status 200" in packets
        meta = await open_metadata(s.settings)
        try:
            repo = await meta.repos.find(RepoPath.parse("acme/game"))
            assert repo is not None
            entries = await SqlObjectCatalog(meta.db).page(repo.id, ObjectQuery(ObjectSort.DATE, True, None, 10))
        finally:
            await meta.close()
    assert [(entry.oid, entry.uploader) for entry in entries] == [(OID, "alice")]
