"""Memory stays flat: 1 GiB in and out of a running server, measured as the process's peak RSS."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.e2e.client import batch, curl
from tests.e2e.harness import Server, cli, require_git_lfs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GiB = 1024**3
RSS_BOUND = 150 * 1024 * 1024  # a correctness bound; the benchmark reports the tight figure


def test_one_gib_round_trip_keeps_peak_rss_flat(tmp_path: Path) -> None:
    require_git_lfs()
    source = tmp_path / "one-gib.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(GiB // (8 * 1024 * 1024)):
            chunk = os.urandom(8 * 1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    oid = digest.hexdigest()

    data = tmp_path / "data"
    server = Server.start(data)
    try:
        cli(data, "user", "add", "alice")
        token = cli(data, "token", "create", "alice").stdout.splitlines()[-1]
        cli(data, "repo", "create", "acme/big")
        cli(data, "repo", "grant", "acme/big", "alice", "write")

        upload = batch(server.url, "acme/big", "alice", token, "upload", oid, GiB)["actions"]["upload"]
        result = curl(upload, "-T", str(source))
        assert result.stdout == "200 0", result.stderr
        stored = data / "objects" / oid[:2] / oid[2:4] / oid
        assert stored.stat().st_size == GiB

        download = batch(server.url, "acme/big", "alice", token, "download", oid, GiB)["actions"]["download"]
        result = curl(download)
        assert result.stdout == f"200 {GiB}", result.stderr
        peak = server.peak_rss_bytes()
    finally:
        assert server.stop() == 0
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
