"""fsck against a real lfsd and the real git-lfs client: a corrupt object, repaired, is uploaded again by a push."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import sha256_file, write_random

pytestmark = pytest.mark.e2e


def _fsck(deployment: Deployment, *args: str, status: int) -> dict[str, Any]:
    result = deployment.server.cli("fsck", "--rehash", *args, check=False)
    assert result.returncode == status, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)  # not a terminal: JSON
    return report


def test_repair_then_git_lfs_push_uploads_the_corrupt_object_again(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    oid = write_random(work / "art.bin", 300_000)
    keep = write_random(work / "keep.bin", 1000)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "art", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)
    assert _fsck(deployment, status=0)["objects"] == 2

    stored = deployment.server.data_dir / "objects" / oid[:2] / oid[2:4] / oid
    data = bytearray(stored.read_bytes())
    data[12345] ^= 0xFF
    stored.write_bytes(bytes(data))

    (finding,) = _fsck(deployment, status=3)["damaged"]
    assert (finding["oid"], finding["problem"], finding["repos"]) == (oid, "corrupt", ["acme/game"])
    (finding,) = _fsck(deployment, "--repair", status=4)["damaged"]
    assert finding["repair"] == "quarantined"

    out = alice.git("lfs", "push", "--all", "origin", cwd=work)
    assert "error" not in out.lower(), out
    assert sha256_file(stored) == oid
    report = _fsck(deployment, status=0)
    assert report["objects"] == 2 and report["rehashed"]["objects"] == 2

    clone = deployment.tmp / "clone"
    alice.git("clone", "-q", str(deployment.tmp / "origin.git"), str(clone))
    assert sha256_file(clone / "art.bin") == oid
    assert sha256_file(clone / "keep.bin") == keep
