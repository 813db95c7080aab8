"""``lfsd audit prune``: refuses without --yes off a terminal, prunes with it, and leaves a row saying so; ``lfsd
audit`` still lists."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.harness import cli


def test_audit_prune_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cli(data, "user", "add", "alice")
    refused = cli(data, "audit", "prune", "--older-than", "30", check=False)
    assert refused.returncode == 5 and "--yes" in refused.stderr
    invalid = cli(data, "audit", "prune", "--older-than", "0", "--yes", check=False)
    assert invalid.returncode == 2  # click's usage error: DAYS is at least 1
    done = json.loads(cli(data, "audit", "prune", "--older-than", "30", "--yes", "--json").stdout)
    assert done == {"pruned": 0, "older_than_days": 30}  # alice was added just now
    assert (
        "pruned 0 audit entries older than 1 days" in cli(data, "audit", "prune", "--older-than", "1", "--yes").stdout
    )
    entries = json.loads(cli(data, "audit", "--json", "--limit", "10").stdout)["entries"]
    assert [e["action"] for e in entries] == ["audit.prune", "audit.prune", "user.add"]
    assert entries[0]["details"]["pruned"] == 0 and entries[0]["actor"].startswith("cli:")
