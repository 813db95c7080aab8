"""Quotas with the real git-lfs client: a push past a quota is refused at batch time, before any byte is sent,
with the 507 message the client shows (quota and usage in it), on every database."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import write_random

pytestmark = pytest.mark.e2e


def _usage(deployment: Deployment, target: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(deployment.server.cli("repo", "usage", target, "--json").stdout)
    return document


def test_a_push_past_the_quota_is_refused_with_the_message(any_deployment: Deployment) -> None:
    deployment = any_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    deployment.repo("acme/tools", ("alice", "write"))
    deployment.server.cli("quota", "set", "acme/game", "1000")

    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    write_random(work / "big.bin", 2000)
    alice.git("add", "big.bin", cwd=work)
    alice.git("commit", "-q", "-m", "too big", cwd=work)
    refused = alice.git("push", "origin", "main", cwd=work, check=False)
    assert "batch response: repository acme/game is over its storage quota" in refused, refused
    assert "0 of 1000 bytes" in refused and "2000 bytes" in refused, refused
    assert _usage(deployment, "acme/game")["bytes"] == 0  # refused before any byte: nothing counted or stored

    deployment.server.cli("quota", "set", "acme/game", "10k")
    alice.git("push", "-q", "origin", "main", cwd=work)
    game = _usage(deployment, "acme/game")
    assert (game["objects"], game["bytes"], game["quota_bytes"]) == (1, 2000, 10000)

    # The owner's quota covers all of its repositories; the same object counts again in another repository.
    deployment.server.cli("quota", "set", "acme", "3000")
    tools = alice.new_repo(deployment.tmp / "tools", deployment.tmp / "tools.git", "acme/tools")
    write_random(tools / "more.bin", 1500)
    alice.git("add", "more.bin", cwd=tools)
    alice.git("commit", "-q", "-m", "more", cwd=tools)
    refused = alice.git("push", "origin", "main", cwd=tools, check=False)
    assert "owner acme is over its storage quota" in refused and "2000 of 3000 bytes" in refused, refused
    shown = json.loads(deployment.server.cli("quota", "show", "acme", "--json").stdout)
    assert (shown["owner"], shown["bytes"], shown["quota_bytes"]) == ("acme", 2000, 3000)
