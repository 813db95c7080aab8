"""``kill -9`` of a real ``lfsd gc`` at random moments, with uploads of the same oids going on meanwhile, then runs to
the end: nothing live is lost, no repository holds an object without bytes, and all the garbage goes. On every
database with local disk, and on S3 (moto's server)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import sys
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lfsd.config import Settings
from lfsd.core.errors import ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.db.metadata import Metadata
from lfsd.db.tables import gc_lease, objects, repo_objects
from lfsd.resources import open_metadata, open_store
from tests.e2e.harness import lfsd_env
from tests.s3server import S3Server

GARBAGE = 1500
LIVE = 200
REUPLOADED = 40
KILLS = 3


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = [data]

    async def read(self) -> bytes:
        return self._data.pop() if self._data else b""


def _data(n: int) -> bytes:
    return f"gc e2e object {n}\n".encode() * (1 + n % 5)


def _oid(data: bytes) -> Oid:
    return Oid.parse(hashlib.sha256(data).hexdigest())


async def _put(store: Any, meta: Metadata, repo_id: int, numbers: range | list[int]) -> None:
    for n in numbers:
        data = _data(n)
        await store.put(_oid(data), len(data), Body(data))
    await meta.objects.link(repo_id, {_oid(_data(n)): len(_data(n)) for n in numbers})


async def _upload_until_linked(store: Any, meta: Metadata, repo_id: int, n: int) -> None:
    """A client's upload of ``n``, retried as git-lfs retries a 503."""
    data = _data(n)
    while True:
        await store.put(_oid(data), len(data), Body(data))
        try:
            await meta.objects.link(repo_id, {_oid(data): len(data)})
            return
        except ServiceUnavailable:
            await asyncio.sleep(0.05)


async def _lease_holder(meta: Metadata) -> tuple[str | None, datetime | None]:
    async with meta.db.transaction() as conn:
        row = (await conn.execute(select(gc_lease.c.holder, gc_lease.c.expires_at))).first()
    return (None, None) if row is None else (row.holder, row.expires_at)


async def _run_gc(env: dict[str, str], meta: Metadata, kill_after: float | None) -> int | None:
    """One ``lfsd gc``; with ``kill_after``, SIGKILL that long after it took the lease (once it is collecting)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lfsd",
        "gc",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    if kill_after is not None:
        while process.returncode is None and (await _lease_holder(meta))[0] is None:  # noqa: ASYNC110 (another process's row)
            await asyncio.sleep(0.01)
        await asyncio.sleep(kill_after)
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            await process.communicate()
            # The killed run's lease stays until it expires (gc_lease): wait for that, as the next CronJob would.
            while (expires := (await _lease_holder(meta))[1]) is not None and expires > utcnow():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            return None
    out, _ = await process.communicate()
    if process.returncode == 0:
        assert json.loads(out)["dry_run"] is False
    return process.returncode


async def _kill_and_rerun(settings: Settings, env: dict[str, str]) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    meta = await open_metadata(settings)
    async with AsyncExitStack() as resources:
        store = (await open_store(settings, resources)).store
        meta.objects.check_bodies_with(store.present)
        live = await meta.repos.create(RepoPath.parse("acme/live"), is_public=False)
        doomed = await meta.repos.create(RepoPath.parse("acme/doomed"), is_public=False)
        await _put(store, meta, live.id, range(LIVE))
        await _put(store, meta, doomed.id, range(LIVE, LIVE + GARBAGE))
        await meta.repos.delete(doomed)
        await SqlGcIndex(meta.db).mark(utcnow() - timedelta(days=2))  # seen unreferenced two days ago

        reuploaded = rng.sample(range(LIVE, LIVE + GARBAGE), REUPLOADED)
        uploads = [_upload_until_linked(store, meta, live.id, n) for n in reuploaded]
        pending = list(uploads)
        for _ in range(KILLS):  # a kill lands at a random moment of the run (or after it ended, which is fine too)
            batch, pending = pending[: REUPLOADED // KILLS], pending[REUPLOADED // KILLS :]
            await asyncio.gather(_run_gc(env, meta, rng.uniform(0.0, 3.0)), *batch)
            await _check(meta, store)
        await asyncio.gather(*pending)
        # A killed run's lease may not have expired yet: exit 4, as a CronJob would meet it.
        while (code := await _run_gc(env, meta, None)) == 4:  # noqa: ASYNC110
            await asyncio.sleep(1)
        assert code == 0
        await _check(meta, store)

        kept = [n for n in range(LIVE)] + reuploaded
        kept_oids = {_oid(_data(n)) for n in kept}
        assert await meta.objects.held_sizes(live.id, kept_oids) == {_oid(_data(n)): len(_data(n)) for n in kept}
        assert await store.present(kept_oids) == kept_oids
        garbage = {_oid(_data(n)) for n in range(LIVE, LIVE + GARBAGE)} - kept_oids
        assert await store.present(garbage) == set()
        async with meta.db.transaction() as conn:
            rows = {Oid(oid) for oid in (await conn.execute(select(objects.c.oid))).scalars()}
        assert rows == kept_oids
    await meta.close()


async def _check(meta: Metadata, store: Any) -> None:
    async with meta.db.transaction() as conn:
        linked = {Oid(oid) for oid in (await conn.execute(select(repo_objects.c.oid).distinct())).scalars()}
    assert await store.present(linked) == linked, "a repository holds an object without bytes"


async def test_kill_9_at_random_points_on_disk(tmp_path: Path, database_url: str | None) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, fsync=False, gc_lease=5)
    env = lfsd_env(tmp_path / "data", database_url, LFSD_FSYNC="false", LFSD_GC_LEASE="5")
    await _kill_and_rerun(settings, env)


async def test_kill_9_at_random_points_on_s3(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    storage = f"s3://{bucket}/lfs"
    settings = Settings(
        data_dir=tmp_path / "data", gc_lease=5, storage=storage, s3_endpoint_url=s3_server.endpoint, s3_path_style=True
    )
    env = lfsd_env(
        tmp_path / "data",
        LFSD_GC_LEASE="5",
        LFSD_STORAGE=storage,
        LFSD_S3_ENDPOINT_URL=s3_server.endpoint,
        LFSD_S3_PATH_STYLE="true",
    )
    await _kill_and_rerun(settings, env)
