"""The administration commands of issue 12, run as real processes on every database: the contract's names,
``--json`` documents, ``--yes``, exit codes, and the audit trail they leave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import cli


def _json(data: Path, database_url: str | None, *args: str) -> Any:
    return json.loads(cli(data, *args, "--json", database_url=database_url).stdout)


def test_the_lifecycle_through_the_command_line(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "d"

    def run(*args: str, stdin: str | None = None) -> str:
        return cli(data, *args, stdin=stdin, database_url=database_url).stdout

    run("user", "add", "alice")
    created = run("token", "create", "alice", "--label", "laptop", "--expires", "30", "--scope", "read").splitlines()
    secret = created[-1]
    assert secret.startswith("lfsd_") and "read" in created[0]
    run("token", "create", "alice", "--label", "ci")
    (reader, writer) = _json(data, database_url, "token", "list", "alice")["tokens"]
    assert (reader["label"], reader["scopes"], writer["scopes"]) == ("laptop", ["read"], ["read", "write"])
    assert reader["expires_at"] is not None and writer["expires_at"] is None and reader["last_used_at"] is None
    assert secret not in cli(data, "token", "list", "alice", database_url=database_url).stdout

    run("repo", "create", "acme/game")
    run("repo", "grant", "acme/game", "alice", "write")
    assert _json(data, database_url, "repo", "grants", "acme/game") == {
        "grants": [{"repo": "acme/game", "user": "alice", "permission": "write"}]
    }
    (listed,) = _json(data, database_url, "repo", "list")["repos"]
    assert (listed["path"], listed["objects"], listed["bytes"], listed["last_push"]) == ("acme/game", 0, 0, None)
    run("repo", "rename", "acme/game", "studio/game")
    run("repo", "public", "studio/game", "on")
    shown = _json(data, database_url, "repo", "show", "studio/game")
    assert shown["public"] is True and shown["grants"][0]["user"] == "alice"
    run("repo", "revoke", "studio/game", "alice")

    run("user", "disable", "alice")
    (alice,) = [u for u in _json(data, database_url, "user", "list")["users"] if u["name"] == "alice"]
    assert alice["disabled"] is True and alice["last_active_at"] is None
    run("user", "enable", "alice")
    run("user", "admin", "alice", "on")
    run("user", "passwd", "alice", "--password-stdin", stdin="a new pass\n")
    shown = _json(data, database_url, "user", "show", "alice")
    assert shown["admin"] is True and shown["password"] is True and shown["disabled"] is False
    run("token", "revoke", str(reader["id"]))
    assert "revoked 1 tokens" in run("token", "revoke", "--user", "alice", "--all")
    assert _json(data, database_url, "token", "list", "alice") == {"tokens": []}

    refused = cli(data, "user", "delete", "alice", database_url=database_url, check=False)
    assert refused.returncode == 5 and "--yes" in refused.stderr
    run("user", "delete", "alice", "--yes")
    run("repo", "delete", "studio/game", "--yes")
    assert _json(data, database_url, "repo", "list") == {"repos": []}

    entries = _json(data, database_url, "audit", "--limit", "100")["entries"]
    actions = [entry["action"] for entry in reversed(entries)]
    assert actions == [
        "user.add",
        "token.create",
        "token.create",
        "repo.create",
        "repo.grant",
        "repo.rename",
        "repo.public",
        "repo.revoke",
        "user.disable",
        "user.enable",
        "user.admin",
        "user.passwd",
        "token.revoke",
        "token.revoke_all",
        "user.delete",
        "repo.delete",
    ]
    assert all(entry["actor"].startswith("cli:") and entry["outcome"] == "ok" for entry in entries)
    assert secret not in json.dumps(entries) and "a new pass" not in json.dumps(entries)
    recent = _json(data, database_url, "audit", "--limit", "2", "--action", "repo")["entries"]
    assert [entry["action"] for entry in recent] == ["repo.delete", "repo.revoke"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("user", "disable", "ghost"), 3),
        (("token", "revoke", "999"), 3),
        (("repo", "rename", "acme/game", "acme/other"), 4),
        (("user", "add", "bob"), 4),
        (("repo", "delete", "acme/game"), 5),
        (("token", "create", "bob", "--label", "x" * 101), 6),
        (("token", "create", "bob", "--scope", "admin"), 6),  # admin-scope tokens: server admins only
        (("token", "revoke", "1", "--all"), 2),
    ],
)
def test_exit_codes_say_what_went_wrong(tmp_path: Path, args: tuple[str, ...], code: int) -> None:
    data = tmp_path / "d"
    cli(data, "user", "add", "bob")
    cli(data, "repo", "create", "acme/game")
    cli(data, "repo", "create", "acme/other")
    result = cli(data, *args, check=False)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert code == 2 or len(result.stderr.strip().splitlines()) == 1, result.stderr  # usage errors show usage
    # Refused calls are recorded too; a missing user or repository is a failed change.
    if code in (3, 4, 6) and args[0] != "token":
        last = json.loads(cli(data, "audit", "--json", "--limit", "1").stdout)["entries"][0]
        assert last["outcome"] == "failed" and "error" in last["details"]
