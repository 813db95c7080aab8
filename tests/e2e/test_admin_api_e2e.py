"""The admin API on a real server, with the real git-lfs client: what it changes holds at the next request."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import GitUser, Server, require_git_lfs
from tests.e2e.test_administration import _batch_statuses, _push

pytestmark = pytest.mark.e2e


def _call(server: Server, token: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{server.url}/api/v1{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return int(response.status), json.loads(raw) if raw else None


def test_a_token_revoked_through_the_api_stops_the_next_push(tmp_path: Path) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data")
    try:
        server.cli("user", "add", "ops", "--admin")
        ops = server.cli("token", "create", "ops", "--scope", "admin").stdout.splitlines()[-1]
        assert _call(server, ops, "POST", "/users", {"name": "alice"})[0] == 201
        assert _call(server, ops, "POST", "/repos", {"path": "acme/game"})[0] == 201
        assert _call(server, ops, "PUT", "/repos/acme/game/-/grants/alice", {"permission": "write"})[0] == 200
        status, made = _call(server, ops, "POST", "/users/alice/tokens", {"label": "laptop"})
        assert status == 201
        alice = GitUser(tmp_path / "home-alice", "alice", made["secret"], server.url)
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        pushed, out = _push(alice, work, "first.bin")
        assert pushed, out

        assert _call(server, ops, "DELETE", f"/tokens/{made['token']['id']}")[0] == 204
        pushed, out = _push(alice, work, "second.bin")
        assert not pushed, out
        assert _batch_statuses(server)[-1] == 401, server.log()
        _, log = _call(server, ops, "GET", "/audit?action=token.revoke")
        (entry,) = log["entries"]
        assert (entry["actor"], entry["outcome"], entry["target"]) == ("ops", "ok", "user:alice")
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()
