"""``lfsd quota set|show`` and ``lfsd repo usage`` as real processes on every database: names, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.harness import cli


def test_quota_and_usage_commands(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "d"

    def run(*args: str) -> str:
        return cli(data, *args, database_url=database_url).stdout

    def document(*args: str) -> Any:
        return json.loads(run(*args, "--json"))

    run("repo", "create", "acme/game")
    assert "set to 10000000000 bytes (10.0 GB)" in run("quota", "set", "acme/game", "10G")
    assert document("quota", "show", "acme/game") == {
        "path": "acme/game",
        "objects": 0,
        "bytes": 0,
        "last_push": None,
        "quota_bytes": 10_000_000_000,
        "quota_source": "own",
    }
    run("quota", "set", "acme", "2GiB")
    assert document("quota", "show", "acme")["quota_bytes"] == 2 * 1024**3
    assert "cleared" in run("quota", "set", "acme", "none")
    assert document("quota", "show", "acme")["quota_bytes"] is None
    run("quota", "set", "acme/game", "0")
    assert document("quota", "show", "acme/game")["quota_source"] is None

    (listed,) = document("repo", "usage")["repos"]
    assert (listed["path"], listed["objects"], listed["bytes"]) == ("acme/game", 0, 0)
    history = document("repo", "usage", "acme/game", "--days", "3")["history"]
    assert [day["bytes"] for day in history] == [0, 0, 0]
    assert "acme/game" in run("repo", "usage")

    for args, code in [
        (("quota", "set", "acme/none", "10"), 3),  # not found
        (("quota", "set", "acme/game", "ten"), 6),  # invalid
        (("quota", "show", "acme/none"), 3),
        (("repo", "usage", "acme/none"), 3),
    ]:
        result = cli(data, *args, database_url=database_url, check=False)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    audited = json.loads(run("audit", "--action", "quota", "--json"))
    recorded = {(e["action"], e["target"], e["outcome"]) for e in audited["entries"]}
    assert recorded >= {
        ("quota.set", "acme/game", "ok"),
        ("quota.set", "acme", "ok"),
        ("quota.set", "acme/none", "failed"),
    }
