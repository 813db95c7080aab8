"""``lfsd fsck`` and ``lfsd repo remove-objects`` against an in-process lfsd: local disk on every database, and S3."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, Unpack

import pytest
from click.testing import CliRunner, Result

from lfsd.cli import main
from lfsd.config import Settings, SettingsArgs
from lfsd.core.fsck import FsckOptions, FsckReport
from lfsd.core.gc import Collector, GcOptions
from lfsd.core.oid import Oid
from lfsd.db.database import utcnow
from lfsd.db.gc import SqlGcIndex
from lfsd.fsck_output import describe_report
from lfsd.resources import open_store
from tests.conftest import AiohttpClient, open_world
from tests.s3server import S3Server
from tests.support import Blob, World, blob


class Bodies(Protocol):
    """Behind lfsd's back: the store's raw bytes."""

    def read(self, oid: str) -> bytes: ...

    def write(self, oid: str, data: bytes) -> None: ...

    def delete(self, oid: str) -> None: ...

    def exists(self, oid: str) -> bool: ...

    def quarantined(self) -> list[str]: ...


class DiskBodies:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, oid: str) -> Path:
        first, second = Oid.parse(oid).shard
        return self.root / "objects" / first / second / oid

    def read(self, oid: str) -> bytes:
        return self._path(oid).read_bytes()

    def write(self, oid: str, data: bytes) -> None:
        self._path(oid).parent.mkdir(parents=True, exist_ok=True)
        self._path(oid).write_bytes(data)

    def delete(self, oid: str) -> None:
        self._path(oid).unlink()

    def exists(self, oid: str) -> bool:
        return self._path(oid).exists()

    def quarantined(self) -> list[str]:
        folder = self.root / "quarantine"
        return sorted(path.name.split(".")[0] for path in folder.iterdir()) if folder.exists() else []


class BucketBodies:
    def __init__(self, endpoint: str, bucket: str) -> None:
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.bucket = bucket

    @staticmethod
    def _key(oid: str) -> str:
        first, second = Oid.parse(oid).shard
        return f"lfs/{first}/{second}/{oid}"

    def read(self, oid: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(oid))["Body"].read()
        return data

    def write(self, oid: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(oid), Body=data)

    def delete(self, oid: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(oid))

    def exists(self, oid: str) -> bool:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(oid))
        return bool(listing.get("Contents"))

    def quarantined(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix="lfs/quarantine/")
        return sorted(item["Key"].rsplit("/", 1)[1].split(".")[0] for item in listing.get("Contents", []))


@dataclass
class Site:
    world: World
    bodies: Bodies
    env: dict[str, str]
    settings: Settings

    async def lfsd(self, *args: str) -> Result:
        """The real command line, in a thread of its own (it runs its own event loop)."""
        runner = CliRunner()
        return await asyncio.to_thread(runner.invoke, main, list(args), env=self.env, catch_exceptions=False)

    async def fsck(self, *args: str, status: int) -> dict[str, Any]:
        result = await self.lfsd("fsck", "--json", *args)
        assert result.exit_code == status, result.output
        report: dict[str, Any] = json.loads(result.stdout)
        assert report["exit_status"] == status
        return report

    async def status(self, repo: str, item: Blob) -> int:
        (obj,) = await self.world.batch_ok(repo, "download", [item], self.world.auth("root"))
        return int(obj["error"]["code"]) if "error" in obj else 200


def _settings(tmp_path: Path, **given: Unpack[SettingsArgs]) -> Settings:
    options: SettingsArgs = {"data_dir": tmp_path / "data", "fsync": False, "buffer_size": 64 * 1024, **given}
    return Settings(**options)


@pytest.fixture
async def site(tmp_path: Path, database_url: str | None, aiohttp_client: AiohttpClient) -> AsyncIterator[Site]:
    """Local disk, on SQLite, MariaDB and PostgreSQL."""
    env = {"LFSD_DATA_DIR": str(tmp_path / "data"), "LFSD_FSYNC": "false"}
    if database_url is not None:
        env["LFSD_DATABASE_URL"] = database_url
    settings = _settings(tmp_path, database_url=database_url)
    world = await open_world(settings, aiohttp_client)
    yield Site(world, DiskBodies(tmp_path / "data"), env, settings)
    await world.meta.close()


@pytest.fixture
async def s3_site(tmp_path: Path, s3_server: S3Server, aiohttp_client: AiohttpClient) -> AsyncIterator[Site]:
    """Bodies in moto's S3 server under a prefix (direct mode on, so that staged uploads are in the bucket too)."""
    bucket = s3_server.new_bucket()
    storage = f"s3://{bucket}/lfs"
    settings = _settings(
        tmp_path,
        database_url=None,
        storage=storage,
        s3_endpoint_url=s3_server.endpoint,
        s3_path_style=True,
        s3_direct=True,
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


async def _push(site: Site, repo: str, items: list[Blob]) -> None:
    """Upload as git-lfs does, through the proxied or the direct (presigned + verify) actions."""
    import aiohttp

    objs = await site.world.batch_ok(repo, "upload", items, site.world.auth("root"))
    async with aiohttp.ClientSession() as session:
        for obj, item in zip(objs, items, strict=True):
            actions = obj.get("actions", {})
            if "upload" not in actions:
                continue
            upload = actions["upload"]
            async with session.put(upload["href"], data=item.data, headers=upload["header"]) as response:
                assert response.status == 200, await response.text()
            if "verify" in actions:
                verify = actions["verify"]
                response = await site.world.client.session.post(
                    verify["href"],
                    json=item.spec(),
                    headers={
                        "Content-Type": "application/vnd.git-lfs+json",
                        "Accept": "application/vnd.git-lfs+json",
                        **verify["header"],
                    },
                )
                assert response.status == 200, await response.text()


def _by_oid(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["oid"]: finding for finding in report["damaged"]}


async def _damage_and_repair(site: Site) -> None:
    """One of each problem; fsck names each by oid and repositories; --repair fixes and the next push re-uploads."""
    await site.world.repo("acme/other")
    shared, gone, resized, intact = blob(3000), blob(4000), blob(5000), blob(6000)
    # Bytes without rows, as an upload whose link never committed leaves them; one of them cut short.
    stray, adopted, truncated = blob(700), blob(800), blob(900)
    await _push(site, "acme/game", [shared, gone, resized, intact])
    await _push(site, "acme/other", [shared])
    await site.fsck("--rehash", status=0)

    good = site.bodies.read(shared.oid)
    site.bodies.write(shared.oid, good[:100] + bytes([good[100] ^ 1]) + good[101:])  # one flipped bit
    site.bodies.delete(gone.oid)
    site.bodies.write(resized.oid, resized.data + b"x")
    site.bodies.write(stray.oid, stray.data)
    site.bodies.write(adopted.oid, adopted.data)
    site.bodies.write(truncated.oid, truncated.data[:-1])

    quick = _by_oid(await site.fsck(status=3))  # without --rehash the flipped bit goes unseen
    assert set(quick) == {gone.oid, resized.oid}
    report = await site.fsck("--rehash", status=3)
    found = _by_oid(report)
    assert found[shared.oid]["problem"] == "corrupt"
    assert found[shared.oid]["repos"] == ["acme/game", "acme/other"]
    assert found[gone.oid] | {"repair": None} == {
        "oid": gone.oid,
        "problem": "missing",
        "repos": ["acme/game"],
        "indexed_size": 4000,
        "stored_size": None,
        "repair": None,
        "quarantined_to": None,
    }
    assert (found[resized.oid]["problem"], found[resized.oid]["stored_size"]) == ("size", 5001)
    assert intact.oid not in found
    assert report["unindexed"]["count"] == 3
    unindexed = {finding["oid"] for finding in report["unindexed"]["objects"]}
    assert unindexed == {stray.oid, adopted.oid, truncated.oid}
    assert report["unindexed"]["recorded_for_gc"] is None
    assert report["rehashed"]["objects"] == 1  # intact only
    assert await site.status("acme/game", shared) == 200  # fsck alone changes nothing

    repair = await site.fsck("--rehash", "--repair", status=4)
    assert repair["unindexed"]["recorded_for_gc"] is None  # --repair alone never hands bytes to the collector
    repaired = _by_oid(repair)
    assert {oid: f["repair"] for oid, f in repaired.items()} == {
        shared.oid: "quarantined",
        gone.oid: "unlinked",
        resized.oid: "quarantined",
    }
    assert site.bodies.quarantined() == sorted([shared.oid, resized.oid])
    for repo in ("acme/game", "acme/other"):
        assert await site.status(repo, shared) == 404
    after = await site.fsck("--rehash", status=5)  # only the stray bytes are left: GC's job, never fsck's
    assert after["damaged"] == [] and after["unindexed"]["count"] == 3
    assert site.bodies.read(stray.oid) == stray.data

    # --collect-unindexed records the bodies that hash right for the collector; the cut one is reported, and left.
    collected = await site.fsck("--collect-unindexed", status=3)
    assert collected["unindexed"]["recorded_for_gc"] == 2
    assert collected["scope"]["collect_unindexed"] is True
    assert collected["rehashed"]["objects"] == 2  # the bodies that hashed right (indexed ones only with --rehash)
    assert [(f["oid"], f["problem"], f["repos"]) for f in collected["damaged"]] == [(truncated.oid, "corrupt", [])]
    again = await site.fsck("--collect-unindexed", status=3)
    assert again["unindexed"]["recorded_for_gc"] == 0  # recorded once
    # The collector removes them one grace period on, unless a push links them first.
    await _push(site, "acme/game", [adopted])
    async with AsyncExitStack() as resources:
        store = (await open_store(site.settings, resources)).store
        later = Collector(SqlGcIndex(site.world.meta.db), store, lambda: utcnow() + timedelta(seconds=61), "test-gc")
        assert (await later.run(GcOptions(grace=timedelta(seconds=60)))).objects == 1
    assert not site.bodies.exists(stray.oid)
    assert site.bodies.read(adopted.oid) == adopted.data
    assert await site.status("acme/game", adopted) == 200

    assert site.bodies.read(truncated.oid) == truncated.data[:-1]

    await _push(site, "acme/game", [shared, gone, resized, truncated])  # the upload replaces the cut body
    assert site.bodies.read(truncated.oid) == truncated.data
    assert site.bodies.read(shared.oid) == shared.data
    assert await site.status("acme/game", shared) == 200
    assert (await site.fsck("--rehash", status=0))["unindexed"]["count"] == 0  # the collector took the stray bytes


async def test_fsck_finds_and_repairs_each_problem_on_disk(site: Site) -> None:
    await _damage_and_repair(site)


async def test_fsck_finds_and_repairs_each_problem_in_a_bucket(s3_site: Site) -> None:
    await _damage_and_repair(s3_site)


async def test_sample_and_repo_narrow_the_check(site: Site) -> None:
    await site.world.repo("acme/other")
    mine, theirs = [blob(1000 + i) for i in range(20)], blob(999)
    await _push(site, "acme/game", mine)
    await _push(site, "acme/other", [theirs])
    for item in (*mine, theirs):
        data = site.bodies.read(item.oid)
        site.bodies.write(item.oid, bytes([data[0] ^ 1]) + data[1:])

    none = await site.fsck("--rehash", "--sample", "0%", status=0)
    assert none["rehashed"]["objects"] == 0 and none["objects"] == 21
    some = await site.fsck("--rehash", "--sample", "50%", status=3)
    assert 0 < len(some["damaged"]) < 21
    every = await site.fsck("--rehash", "--sample", "100%", status=3)
    assert len(every["damaged"]) == 21

    narrow = await site.fsck("--rehash", "--repo", "acme/other", status=3)
    assert narrow["objects"] == 1 and narrow["scope"]["repo"] == "acme/other"
    assert [f["oid"] for f in narrow["damaged"]] == [theirs.oid]
    assert narrow["unindexed"]["checked"] is False

    missing = await site.lfsd("fsck", "--repo", "acme/nothing")
    assert missing.exit_code == 1 and "no repository acme/nothing" in missing.output
    usage = await site.lfsd("fsck", "--sample", "5%")
    assert usage.exit_code == 2 and "--rehash" in usage.output


async def test_remove_objects_unlinks_from_one_repository_only(site: Site) -> None:
    await site.world.repo("acme/other")
    leaked, kept = blob(2000), blob(2100)
    await _push(site, "acme/game", [leaked, kept])
    await _push(site, "acme/other", [leaked])

    refused = await site.lfsd("repo", "remove-objects", "acme/game", leaked.oid)
    assert refused.exit_code == 5 and "--yes" in refused.output  # refused: the administration exit codes
    assert await site.status("acme/game", leaked) == 200

    done = await site.lfsd("repo", "remove-objects", "acme/game", leaked.oid, leaked.oid, "--yes")
    assert done.exit_code == 0, done.output
    assert "unlinked 1 of 1 objects from acme/game" in done.output
    assert "garbage collection" in done.output
    assert await site.status("acme/game", leaked) == 404
    assert await site.status("acme/game", kept) == 200
    assert await site.status("acme/other", leaked) == 200
    assert site.bodies.read(leaked.oid) == leaked.data  # the bytes stay until GC

    bad = await site.lfsd("repo", "remove-objects", "acme/game", "nothex", "--yes")
    assert bad.exit_code == 2
    nobody = await site.lfsd("repo", "remove-objects", "acme/nothing", leaked.oid, "--yes")
    assert nobody.exit_code == 3 and "no repository acme/nothing" in nobody.output  # not found


def test_the_text_report_says_what_happens_to_unindexed_bytes() -> None:
    """On a terminal: the verdict says whether the unindexed bodies were handed to the collector."""
    found = FsckReport(FsckOptions(), stored=3, unindexed_count=2, unindexed_bytes=2_000_000)
    assert list(describe_report(found))[-1] == (
        "no damage; 2 bodies (2.0 MB) held by no repository "
        "(--collect-unindexed records those unknown to the index, so that lfsd gc removes them)"
    )
    found = FsckReport(FsckOptions(collect_unindexed=True), stored=3, unindexed_count=2, unindexed_bytes=2_000_000)
    found.unindexed_recorded = 1
    assert list(describe_report(found))[-1] == (
        "no damage; 2 bodies (2.0 MB) held by no repository; "
        "1 unknown to the index recorded for garbage collection (lfsd gc, one grace period on)"
    )


async def test_collecting_unindexed_bodies_is_refused_on_an_empty_index(site: Site) -> None:
    """An empty index beside a full store is the wrong database (or a lost one): every body would be collected."""
    item = blob(1000)
    site.bodies.write(item.oid, item.data)
    result = await site.lfsd("fsck", "--json", "--collect-unindexed")
    assert result.exit_code == 1
    assert "the index holds no objects" in result.output
    assert site.bodies.read(item.oid) == item.data
    assert (await site.fsck(status=5))["unindexed"]["count"] == 1
    result = await site.lfsd("fsck", "--collect-unindexed", "--repo", "acme/game")
    assert result.exit_code == 2 and "cannot go with --repo" in result.output
