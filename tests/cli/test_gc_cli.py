"""``lfsd gc`` against an in-process lfsd: local disk on every database, and S3 (moto's server)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select, update

from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.db.tables import objects
from tests.cli.test_fsck import BucketBodies, DiskBodies, Site, _push, _settings
from tests.conftest import AiohttpClient, open_world
from tests.s3server import S3Server
from tests.support import blob


@pytest.fixture
async def site(tmp_path: Path, database_url: str | None, aiohttp_client: AiohttpClient) -> AsyncIterator[Site]:
    env = {"LFSD_DATA_DIR": str(tmp_path / "data"), "LFSD_FSYNC": "false"}
    if database_url is not None:
        env["LFSD_DATABASE_URL"] = database_url
    settings = _settings(tmp_path, database_url=database_url)
    world = await open_world(settings, aiohttp_client)
    yield Site(world, DiskBodies(tmp_path / "data"), env, settings)
    await world.meta.close()


@pytest.fixture
async def s3_site(tmp_path: Path, s3_server: S3Server, aiohttp_client: AiohttpClient) -> AsyncIterator[Site]:
    bucket = s3_server.new_bucket()
    storage = f"s3://{bucket}/lfs"
    settings = _settings(
        tmp_path, database_url=None, storage=storage, s3_endpoint_url=s3_server.endpoint, s3_path_style=True
    )
    world = await open_world(settings, aiohttp_client)
    env = {
        "LFSD_DATA_DIR": str(tmp_path / "data"),
        "LFSD_STORAGE": storage,
        "LFSD_S3_ENDPOINT_URL": s3_server.endpoint,
        "LFSD_S3_PATH_STYLE": "true",
    }
    yield Site(world, BucketBodies(s3_server.endpoint, bucket), env, settings)
    await world.meta.close()


async def _gc(site: Site, *args: str, status: int = 0) -> dict[str, Any]:
    result = await site.lfsd("gc", "--json", *args)
    assert result.exit_code == status, result.output
    if status:
        return {"error": result.output}
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def _age(site: Site, seconds: int) -> None:
    """As if ``seconds`` had gone by since the collector marked the rows."""
    async with site.world.meta.db.transaction() as conn:
        for oid, marked in (await conn.execute(select(objects.c.oid, objects.c.unlinked_at))).all():
            if marked is not None:
                await conn.execute(
                    update(objects).where(objects.c.oid == oid).values(unlinked_at=marked - timedelta(seconds=seconds))
                )


async def _dry_run_then_real(site: Site) -> None:
    await site.world.repo("acme/other")
    own, shared = blob(3000), blob(4000)
    await _push(site, "acme/game", [own, shared])
    await _push(site, "acme/other", [shared])
    removed = await site.lfsd("repo", "remove-objects", "acme/game", own.oid, shared.oid, "--yes")
    assert removed.exit_code == 0, removed.output

    first = await _gc(site)
    assert (first["objects"], first["newly_unreferenced"], first["dry_run"]) == (0, 1, False)
    await _age(site, 86400 + 1)
    dry = await _gc(site, "--dry-run")
    assert (dry["objects"], dry["bytes"], dry["dry_run"]) == (1, 3000, True)
    assert site.bodies.read(own.oid) == own.data

    real = await _gc(site)
    assert (real["objects"], real["bytes"], real["grace_seconds"]) == (1, 3000, 86400)
    with pytest.raises(Exception):  # noqa: B017 - FileNotFoundError on disk, NoSuchKey on S3
        site.bodies.read(own.oid)
    assert await site.world.fetch("acme/other", shared, site.world.auth("root")) == shared.data
    assert (await _gc(site, "--dry-run"))["objects"] == 0

    await _push(site, "acme/game", [own])  # gone from the store: uploaded again, as for any new object
    assert await site.world.fetch("acme/game", own, site.world.auth("root")) == own.data


async def test_dry_run_then_real_run_on_disk(site: Site) -> None:
    await _dry_run_then_real(site)


async def test_dry_run_then_real_run_on_s3(s3_site: Site) -> None:
    await _dry_run_then_real(s3_site)


async def test_a_grace_shorter_than_a_link_is_refused(site: Site) -> None:
    result = await site.lfsd("gc", "--grace", "60")
    assert result.exit_code == 6
    assert "shorter than link_ttl" in result.output


async def test_a_second_collector_leaves_at_once(site: Site) -> None:
    index = SqlGcIndex(site.world.meta.db)
    assert await index.acquire("gc-elsewhere", utcnow(), timedelta(minutes=5))
    result = await site.lfsd("gc")
    assert result.exit_code == 4
    assert "another garbage collection holds the lease" in result.output
    assert (await _gc(site, "--dry-run"))["objects"] == 0  # a dry run needs no lease
    await index.release("gc-elsewhere")
    assert (await _gc(site))["objects"] == 0


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.received.clear()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("database_url", [None], indirect=False)
async def test_metrics_go_to_the_pushgateway(site: Site, gateway: str) -> None:
    own = blob(2000)
    await _push(site, "acme/game", [own])
    assert (await site.lfsd("repo", "remove-objects", "acme/game", own.oid, "--yes")).exit_code == 0
    await _gc(site)
    await _age(site, 86400 + 1)
    await _gc(site, "--pushgateway", gateway)
    ((path, body),) = _Gateway.received
    assert path == "/metrics/job/lfsd_gc"
    text = body.decode()
    for line in (
        "lfsd_gc_runs_total 1.0",
        "lfsd_gc_objects_reclaimed_total 1.0",
        "lfsd_gc_bytes_reclaimed_total 2000.0",
    ):
        assert line in text
    assert "lfsd_gc_duration_seconds " in text
