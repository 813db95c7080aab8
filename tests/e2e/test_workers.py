"""``lfsd serve --workers 2``: one port, metrics of the whole server from any worker, one SIGTERM drains them all."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from tests.e2e.client import batch, curl, start_curl
from tests.e2e.harness import Server, free_port, lfsd_env, write_random, writing
from tests.e2e.test_operability import MiB, _get, _refused, _scrape, _wait_for

pytestmark = pytest.mark.e2e

PUT_ROUTE = "lfsd_http_requests_total{method=PUT,route=/{repo}/info/lfs/objects/{oid},status=200}"


def _workers(server: Server) -> list[int]:
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _start(tmp_path: Path) -> tuple[Server, str, str]:
    metrics = f"127.0.0.1:{free_port()}"
    server = Server.start(tmp_path / "data", args=("--workers", "2"), extra_env={"LFSD_METRICS_LISTEN": metrics})
    try:
        server.cli("user", "add", "alice")
        token = server.cli("token", "create", "alice").stdout.splitlines()[-1]
        server.cli("repo", "create", "acme/game")
        server.cli("repo", "grant", "acme/game", "alice", "write")
        _wait_for(lambda: _ready(f"http://{metrics}/readyz"), 30)
    except AssertionError as failed:
        server.stop()  # not left running for a later test to trip over
        raise AssertionError(f"{failed}; the server's log ends with:\n{server.log()[-6000:]}") from failed
    except BaseException:
        server.stop()
        raise
    return server, token, f"http://{metrics}"


def _ready(url: str) -> bool:
    """The metrics listener may open a moment after the main port (the workers start it): refused means not yet."""
    try:
        return _get(url)[0] == 200
    except urllib.error.URLError:
        return False


def test_two_workers_share_the_port_and_every_scrape_reports_the_whole_server(tmp_path: Path) -> None:
    server, token, metrics = _start(tmp_path)
    try:
        assert len(_workers(server)) == 2
        for i in range(12):
            path = tmp_path / f"f{i}.bin"
            oid = write_random(path, 10_000 + i)
            action = batch(server.url, "acme/game", "alice", token, "upload", oid, path.stat().st_size)
            assert curl(action["actions"]["upload"], "-T", str(path)).stdout == "200 0"
        # Each scrape is a new connection, answered by whichever worker accepts it: every one counts all 12.
        for _ in range(6):
            figures = _scrape(metrics)
            assert figures[PUT_ROUTE] == 12
            assert figures["lfsd_server_processes"] == 3
            assert figures["lfsd_transfers_in_flight"] == 0
            assert figures["lfsd_process_resident_memory_bytes"] > 0
        # A second server cannot take part of the port's traffic (as SO_REUSEPORT would let it): it fails.
        second = subprocess.run(
            [sys.executable, "-m", "lfsd", "serve", "--listen", f"127.0.0.1:{server.port}", "--workers", "2"],
            env=lfsd_env(tmp_path / "other"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1 and "in use" in second.stderr, second.stderr
    finally:
        assert server.stop() == 0


def test_one_sigterm_drains_every_worker(tmp_path: Path) -> None:
    server, token, metrics = _start(tmp_path)
    workers = _workers(server)
    source = tmp_path / "100m.bin"
    oid = write_random(source, 100 * MiB)
    action = batch(server.url, "acme/game", "alice", token, "upload", oid, 100 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "30M", "-T", str(source))  # about 3 s
    _wait_for(lambda: writing(server.data_dir, oid), 10)
    server.process.send_signal(signal.SIGTERM)
    _wait_for(lambda: _refused(server.port), 10)
    out, err = upload.communicate(timeout=120)
    assert out == "200 0", err
    assert server.process.wait(timeout=60) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    stored = server.data_dir / "objects" / oid[:2] / oid[2:4] / oid
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    assert digest == oid
    assert _refused(int(metrics.rpartition(":")[2]))
