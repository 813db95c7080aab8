"""A flood of wrong passwords against a running server: memory stays flat and token users go on being served."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.client import LFS_JSON
from tests.e2e.harness import Server, cli

pytestmark = [pytest.mark.e2e]

# Before the password pool, 200 wrong passwords ran up to 16 Argon2 checks (19 MiB each) at once: ~390 MiB peak.
RSS_BOUND = 150 * 1024 * 1024


def _batch(url: str, user: str, secret: str) -> int:
    request = urllib.request.Request(
        f"{url}/acme/game.git/info/lfs/objects/batch",
        data=json.dumps({"operation": "download", "objects": []}).encode(),
        method="POST",
        headers={
            "Accept": LFS_JSON,
            "Content-Type": LFS_JSON,
            "Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_password_flood_keeps_memory_flat_and_tokens_served(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server.start(data)
    try:
        cli(data, "user", "add", "alice", "--password-stdin", stdin="correct horse\n")
        cli(data, "user", "add", "bob")
        token = cli(data, "token", "create", "bob").stdout.splitlines()[-1]
        cli(data, "repo", "create", "acme/game")
        cli(data, "repo", "grant", "acme/game", "bob", "read")

        with ThreadPoolExecutor(64) as pool:
            flood = [pool.submit(_batch, server.url, f"user{i % 40}", f"guess {i}") for i in range(300)]
            tokens = [pool.submit(_batch, server.url, "bob", token) for _ in range(10)]
            statuses = [future.result() for future in flood]
            assert [future.result() for future in tokens] == [200] * 10
        assert set(statuses) <= {401, 429, 503}, set(statuses)
        assert statuses.count(401) < len(statuses), "nothing refused the flood before hashing"
        peak = server.peak_rss_bytes()
    finally:
        assert server.stop() == 0
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
