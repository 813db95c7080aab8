"""The real git-lfs client sees administration at once: a revoked token, a disabled user, a removed grant and a
renamed repository each stop the next push with 401/403/404, and links handed out before stop within seconds."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import GitUser, Server, require_git_lfs, write_random

pytestmark = pytest.mark.e2e

STANDING_TTL = 1.0
LFS = "application/vnd.git-lfs+json"


def _last_batch_status_becomes(server: Server, expected: int) -> bool:
    """Whether the last batch logged is answered ``expected`` within a few seconds. Before the refused push, the last
    one was answered 200; the access line is written once the response has gone out, so the client can fail and exit
    a moment before it is there."""
    deadline = time.monotonic() + 10
    while _batch_statuses(server)[-1] != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _batch_statuses(server: Server) -> list[int]:
    statuses = []
    for line in server.log().splitlines():
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if "batch" in str(record.get("route", "")) and "status" in record:
            statuses.append(int(record["status"]))
    return statuses


def _user(server: Server, tmp: Path, name: str, repo: str) -> GitUser:
    server.cli("user", "add", name)
    token = server.cli("token", "create", name, "--label", "e2e").stdout.splitlines()[-1]
    server.cli("repo", "grant", repo, name, "write")
    return GitUser(tmp / f"home-{name}", name, token, server.url)


def _push(user: GitUser, work: Path, name: str) -> tuple[bool, str]:
    write_random(work / name, 1000)
    user.git("add", name, cwd=work)
    user.git("commit", "-q", "-m", name, cwd=work)
    out = user.git("push", "-q", "origin", "HEAD", cwd=work, check=False, env={"GIT_TERMINAL_PROMPT": "0"})
    return "error" not in out.lower() and "fatal" not in out.lower(), out


def _upload_link(server: Server, user: GitUser, repo: str) -> dict[str, Any]:
    body = {"operation": "upload", "objects": [{"oid": "ab" * 32, "size": 5}], "transfers": ["basic"]}
    request = urllib.request.Request(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        data=json.dumps(body).encode(),
        headers={
            "Accept": LFS,
            "Content-Type": LFS,
            "Authorization": "Basic " + b64encode(f"{user.name}:{user.token}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        action: dict[str, Any] = json.load(response)["objects"][0]["actions"]["upload"]
    return action


def _use_link(action: dict[str, Any]) -> int:
    request = urllib.request.Request(action["href"], data=b"hello", method="PUT", headers=action["header"])
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("change", ["revoke token", "disable user", "remove grant", "rename repository"])
def test_the_next_push_and_old_links_stop(tmp_path: Path, change: str) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data", extra_env={"LFSD_LINK_STANDING_TTL": str(STANDING_TTL)})
    try:
        server.cli("repo", "create", "acme/game")
        alice = _user(server, tmp_path, "alice", "acme/game")
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        ok, out = _push(alice, work, "first.bin")
        assert ok, out
        link = _upload_link(server, alice, "acme/game")

        if change == "revoke token":
            (token,) = json.loads(server.cli("token", "list", "alice", "--json").stdout)["tokens"]
            server.cli("token", "revoke", str(token["id"]))
            expected, link_status = 401, 401
        elif change == "disable user":
            server.cli("user", "disable", "alice")
            expected, link_status = 401, 401
        elif change == "remove grant":
            server.cli("repo", "revoke", "acme/game", "alice")
            expected, link_status = 404, 404
        else:
            server.cli("repo", "rename", "acme/game", "acme/renamed")
            expected, link_status = 404, None

        ok, out = _push(alice, work, "second.bin")
        assert not ok, out
        assert _last_batch_status_becomes(server, expected), server.log()
        time.sleep(STANDING_TTL + 0.5)
        if link_status is not None:
            assert _use_link(link) == link_status
        else:
            # Links name the repository by id: after a rename they still upload, to the same repository.
            assert _use_link(link) in (200, 422)
            (work / ".lfsconfig").write_text(f'[lfs]\n\turl = "{server.url}/acme/renamed.git/info/lfs"\n')
            alice.git("commit", "-q", "-am", "moved", cwd=work)
            ok, out = _push(alice, work, "third.bin")
            assert ok, out
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()
