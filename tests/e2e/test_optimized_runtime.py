"""The container image runs the server as ``python -OO`` (no docstrings, no asserts: ~3 MiB less per process, issue
17). Nothing lfsd serves may depend on either: the real client pushes and clones, the admin API answers and serves
the same OpenAPI document, the web UI answers, all from a server started that way."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from lfsd.http.admin_api.openapi import build_document
from tests.e2e.harness import GitUser, Server, require_git_lfs, sha256_file, write_random

pytestmark = pytest.mark.e2e


def test_a_server_under_python_oo_serves_git_lfs_the_admin_api_and_the_ui(tmp_path: Path) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data", extra_env={"PYTHONOPTIMIZE": "2"})
    try:
        # The server's own environment, not the test's: asserts and docstrings are really gone in it.
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONOPTIMIZE=2" in environ

        server.cli("user", "add", "ops", "--admin")
        ops = server.cli("token", "create", "ops", "--scope", "admin").stdout.splitlines()[-1]
        request = urllib.request.Request(
            f"{server.url}/api/v1/users",
            data=json.dumps({"name": "alice"}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {ops}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        server.cli("repo", "create", "acme/game")
        server.cli("repo", "grant", "acme/game", "alice", "write")
        token = server.cli("token", "create", "alice").stdout.splitlines()[-1]

        alice = GitUser(tmp_path / "home-alice", "alice", token, server.url)
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        expected = {f"f{i}.bin": write_random(work / f"f{i}.bin", 1000 * (i + 1)) for i in range(20)}
        alice.git("add", ".", cwd=work)
        alice.git("commit", "-q", "-m", "assets", cwd=work)
        alice.git("push", "-q", "origin", "main", cwd=work)
        clone = tmp_path / "clone"
        alice.git("clone", "-q", str(tmp_path / "origin.git"), str(clone))
        for name, oid in expected.items():
            assert sha256_file(clone / name) == oid, name

        # The admin API's document is the same as without -OO: no description may come from a docstring.
        request = urllib.request.Request(
            f"{server.url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {ops}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == build_document()

        with urllib.request.urlopen(f"{server.url}/ui/login", timeout=10) as response:
            assert response.status == 200
            assert b"<form" in response.read()
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()
