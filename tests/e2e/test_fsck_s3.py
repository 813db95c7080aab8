"""fsck on S3 against a real lfsd and the real git-lfs client: an object corrupted in the bucket is found by
``lfsd fsck --rehash``, quarantined and unlinked by ``--repair``, uploaded again by ``git lfs push --all`` from a
client that has the file, and a fresh clone gets the right bytes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import boto3
import pytest

from lfsd.core.oid import Oid
from tests.e2e.conftest import Deployment
from tests.e2e.harness import lfsd_env, sha256_file, write_random

pytestmark = pytest.mark.e2e


def _fsck(deployment: Deployment, *args: str, status: int) -> dict[str, Any]:
    """``lfsd fsck --rehash`` with the server's settings, S3 included."""
    server = deployment.server
    result = subprocess.run(
        [sys.executable, "-m", "lfsd", "fsck", "--rehash", *args],
        env=lfsd_env(server.data_dir, server.database_url, **deployment.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == status, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)  # not a terminal: JSON
    return report


class Bucket:
    """The bucket behind the deployment, as an operator with the AWS CLI would see it."""

    def __init__(self, deployment: Deployment) -> None:
        location = deployment.env["LFSD_STORAGE"].removeprefix("s3://")
        self.name, _, self.prefix = location.partition("/")
        self.client = boto3.client("s3", endpoint_url=deployment.env["LFSD_S3_ENDPOINT_URL"], region_name="us-east-1")

    def key(self, oid: str) -> str:
        first, second = Oid.parse(oid).shard
        return f"{self.prefix}/{first}/{second}/{oid}"

    def read(self, oid: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.name, Key=self.key(oid))["Body"].read()
        return data

    def write(self, oid: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=self.key(oid), Body=data)

    def quarantined(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=f"{self.prefix}/quarantine/")
        return [item["Key"].rsplit("/", 1)[1].split(".")[0] for item in listing.get("Contents", [])]


def test_repair_on_s3_then_git_lfs_push_uploads_the_corrupt_object_again(s3_deployment: Deployment) -> None:
    deployment = s3_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    url = f"{deployment.server.url}/acme/game.git"
    work = deployment.tmp / "work"
    alice.git("clone", "-q", url, str(work))
    alice.git("lfs", "track", "*.bin", cwd=work)
    oid = write_random(work / "art.bin", 300_000)
    keep = write_random(work / "keep.bin", 1000)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "art", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    assert _fsck(deployment, status=0)["objects"] == 2

    # One byte flipped in the bucket: same size, so only the re-hash can tell.
    bucket = Bucket(deployment)
    data = bytearray(bucket.read(oid))
    data[12345] ^= 0xFF
    bucket.write(oid, bytes(data))

    (finding,) = _fsck(deployment, status=3)["damaged"]
    assert (finding["oid"], finding["problem"], finding["repos"]) == (oid, "corrupt", ["acme/game"])
    (finding,) = _fsck(deployment, "--repair", status=4)["damaged"]
    assert finding["repair"] == "quarantined" and finding["quarantined_to"].startswith(f"s3://{bucket.name}/")
    assert bucket.quarantined() == [oid]
    out = alice.git("lfs", "push", "--all", "origin", cwd=work)
    assert "error" not in out.lower(), out
    assert hashlib.sha256(bucket.read(oid)).hexdigest() == oid
    report = _fsck(deployment, status=0)
    assert report["objects"] == 2 and report["rehashed"]["objects"] == 2

    clone = deployment.tmp / "clone"
    alice.git("clone", "-q", url, str(clone))
    assert sha256_file(clone / "art.bin") == oid
    assert sha256_file(clone / "keep.bin") == keep
