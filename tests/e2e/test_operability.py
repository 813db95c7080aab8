"""Metrics after a real push, JSON logs without secrets, the dashboard's queries, and the SIGTERM drain."""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.client import batch, start_curl
from tests.e2e.conftest import Deployment
from tests.e2e.harness import ROOT, Server, free_port, require_git_lfs, write_random, writing

pytestmark = pytest.mark.e2e

# Each exported family, and whether a push must move it.
FAMILIES = {
    "lfsd_http_requests": True,
    "lfsd_http_request_duration_seconds": True,
    "lfsd_http_received_bytes": True,
    "lfsd_http_sent_bytes": True,
    "lfsd_transfers_in_flight": False,  # back to zero after the push
    "lfsd_storage_operation_duration_seconds": True,
    "lfsd_storage_errors": False,  # no storage fails here
    "lfsd_batch_objects": True,
    "lfsd_locks_held": True,
    # Pool gauges: present; a steady pool (SQLite keeps one connection) need not move.
    "lfsd_db_connections_open": False,
    "lfsd_db_connections_in_use": False,
    "lfsd_db_connections_idle": False,
    "lfsd_db_connections_max_open": False,
    "lfsd_db_connection_waits": False,
    "lfsd_db_connection_wait_seconds": False,
    "lfsd_process_resident_memory_bytes": True,
    "lfsd_process_cpu_seconds": True,
    "python_gc_collections": True,
    "python_info": False,
}


def _scrape(url: str) -> dict[str, float]:
    """Every sample as ``name{labels}`` -> value, plus each family's total under its bare name."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        values.setdefault(family.name, 0.0)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
            values[family.name] += sample.value
    return values


def test_metrics_move_after_a_push_and_logs_are_json_without_secrets(tmp_path: Path) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data", extra_env={"LFSD_LOG_FORMAT": "json"})
    deployment = Deployment(server, tmp_path)
    try:
        alice = deployment.user("alice")
        deployment.repo("acme/game", ("alice", "write"))
        before = _scrape(server.url)
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        for i in range(5):
            write_random(work / f"f{i}.bin", 50_000 + i)
        alice.git("add", ".", cwd=work)
        alice.git("commit", "-q", "-m", "assets", cwd=work)
        alice.git("push", "-q", "origin", "main", cwd=work)
        alice.git("lfs", "lock", "f0.bin", cwd=work)
        alice.git("clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "clone"))
        after = _scrape(server.url)
        text = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
    finally:
        assert server.stop() == 0

    for family, moves in FAMILIES.items():
        assert family in after, f"{family} is not exported"
        if moves:
            assert after[family] != before.get(family), f"{family} did not move"
    assert after["lfsd_locks_held"] == 1
    routes = {key for key in after if key.startswith("lfsd_http_requests_total{")}
    assert any("route=/{repo}/info/lfs/objects/batch" in key for key in routes), routes
    assert all("acme" not in key for key in routes), "a raw path leaked into a label"
    assert after["lfsd_batch_objects_total{operation=upload,result=action}"] == 5

    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    requests = [json.loads(line) for line in lines if '"lfsd.access"' in line]
    assert requests, server.log()
    for entry in requests:
        for field in ("request_id", "method", "route", "repo", "status", "bytes_in", "bytes_out", "duration_s", "user"):
            assert field in entry, (field, entry)
    assert any(entry["user"] == "alice" and entry["repo"] == "acme/game.git" for entry in requests)
    events = {json.loads(line).get("event") for line in lines}
    assert {"started", "draining", "stopped"} <= events
    log_text = server.log()
    assert alice.token not in log_text
    assert "LFSD-Link" not in log_text


def test_dashboard_queries_use_only_exported_metrics(tmp_path: Path) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data")
    try:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            families = list(text_string_to_metric_families(response.read().decode()))
    finally:
        assert server.stop() == 0
    # The series names each family can have, whether or not it has samples yet.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
    names = {family.name + suffix for family in families for suffix in suffixes.get(family.type, ("",))}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "lfsd-dashboard.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b((?:lfsd|python|process)_[a-z_]+)\b", target["expr"]))
    assert used, "the dashboard has no queries"
    missing = {name for name in used if name not in names}
    assert not missing, f"the dashboard queries metrics lfsd does not export: {missing}"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def _drain_server(tmp_path: Path, grace: str = "120", **settings: str) -> tuple[Server, int, str]:
    metrics_port = free_port()
    env = {f"LFSD_{name.upper()}": value for name, value in settings.items()}
    server = Server.start(
        tmp_path / "data",
        extra_env={"LFSD_METRICS_LISTEN": f"127.0.0.1:{metrics_port}", "LFSD_SHUTDOWN_GRACE": grace, **env},
    )
    server.cli("user", "add", "alice")
    token = server.cli("token", "create", "alice").stdout.splitlines()[-1]
    server.cli("repo", "create", "acme/big")
    server.cli("repo", "grant", "acme/big", "alice", "write")
    for _ in range(50):
        if _get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 200:
            break
        time.sleep(0.1)
    return server, metrics_port, token


def _wait_for(predicate: object, seconds: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


MiB = 1024 * 1024


def test_sigterm_lets_an_upload_in_flight_finish(tmp_path: Path) -> None:
    require_git_lfs()
    source = tmp_path / "200m.bin"
    oid = write_random(source, 200 * MiB)
    server, metrics_port, token = _drain_server(tmp_path)
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 200 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "40M", "-T", str(source))  # about 5 s
    _wait_for(lambda: writing(server.data_dir, oid), 10)
    server.process.send_signal(signal.SIGTERM)
    _wait_for(lambda: _get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 503, 5)
    assert "draining" in _get(f"http://127.0.0.1:{metrics_port}/readyz")[1]
    _wait_for(lambda: _refused(server.port), 5)
    out, err = upload.communicate(timeout=120)
    assert out == "200 0", err
    assert server.process.wait(timeout=60) == 0
    stored = server.data_dir / "objects" / oid[:2] / oid[2:4] / oid
    assert stored.stat().st_size == 200 * MiB
    assert subprocess.run(["sha256sum", str(stored)], capture_output=True, text=True).stdout.split()[0] == oid
    assert list((server.data_dir / "tmp").iterdir()) == []


def test_sigterm_lets_a_download_in_flight_finish(tmp_path: Path) -> None:
    require_git_lfs()
    source = tmp_path / "200m.bin"
    oid = write_random(source, 200 * MiB)
    server, metrics_port, token = _drain_server(tmp_path)
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 200 * MiB)["actions"]["upload"]
    put = start_curl(action, "-T", str(source))
    assert put.communicate(timeout=120)[0] == "200 0"
    action = batch(server.url, "acme/big", "alice", token, "download", oid, 200 * MiB)["actions"]["download"]
    download = start_curl(action, "--limit-rate", "40M")
    time.sleep(1)
    server.process.send_signal(signal.SIGTERM)
    _wait_for(lambda: _get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 503, 5)
    _wait_for(lambda: _refused(server.port), 5)
    assert download.poll() is None, "the download should still be running"
    out, err = download.communicate(timeout=120)
    assert out == f"200 {200 * MiB}", err
    assert server.process.wait(timeout=60) == 0


def test_grace_expiry_cancels_and_cleans_up_and_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    require_git_lfs()
    source = tmp_path / "50m.bin"
    oid = write_random(source, 50 * MiB)
    server, _, token = _drain_server(tmp_path, grace="1")
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 50 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "1M", "-T", str(source))  # far longer than the grace period
    _wait_for(lambda: writing(server.data_dir, oid), 10)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    upload.communicate(timeout=30)
    assert list((server.data_dir / "tmp").iterdir()) == [], "the cancelled upload left its temp file"
    assert not (server.data_dir / "objects" / oid[:2] / oid[2:4] / oid).exists()

    second, _, token = _drain_server(tmp_path / "second")
    action = batch(second.url, "acme/big", "alice", token, "upload", oid, 50 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "1M", "-T", str(source))
    _wait_for(lambda: writing(second.data_dir, oid), 10)
    second.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert second.process.poll() is None, "still draining after the first signal"
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(timeout=10) != 0
    upload.communicate(timeout=30)


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request and read its response head (the bodies here are small and come with it)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    return data


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: lfsd\r\n\r\n"


def test_sigterm_keeps_accepting_for_the_drain_delay_then_closes_idle_connections(tmp_path: Path) -> None:
    require_git_lfs()
    delay = 2.0
    source = tmp_path / "60m.bin"
    oid = write_random(source, 60 * MiB)
    server, metrics_port, token = _drain_server(tmp_path, drain_delay=str(delay))
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 60 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "10M", "-T", str(source), "-D", str(tmp_path / "put-headers"))
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    reused = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        for sock in (idle, reused):
            assert b"connection: close" not in _exchange(sock, HEALTHZ).lower()  # kept alive before the signal
        _wait_for(lambda: writing(server.data_dir, oid), 10)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        _wait_for(lambda: _get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 503, 1)

        # During the delay: still accepting, and every response closes its connection.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as fresh:
            head = _exchange(fresh, HEALTHZ).lower()
            assert head.startswith(b"http/1.1 200 ") and b"connection: close" in head, head
        head = _exchange(reused, HEALTHZ).lower()
        assert head.startswith(b"http/1.1 200 ") and b"connection: close" in head, head
        assert time.monotonic() - signalled < delay

        # After it: the listener is gone and the idle keep-alive connection is closed, while the upload runs on.
        _wait_for(lambda: _refused(server.port), delay + 2)
        assert time.monotonic() - signalled >= delay - 0.2
        idle.settimeout(2)
        assert idle.recv(1024) == b"", "the idle keep-alive connection was left open"
        assert upload.poll() is None, "the upload should still be running"
    finally:
        idle.close()
        reused.close()
    out, err = upload.communicate(timeout=60)
    assert out == "200 0", err
    assert "connection: close" in (tmp_path / "put-headers").read_text().lower()
    finished = time.monotonic()
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - finished < 3, "the drain should end as soon as the upload has"
    assert (server.data_dir / "objects" / oid[:2] / oid[2:4] / oid).stat().st_size == 60 * MiB


def test_a_stalled_request_body_does_not_hold_the_drain(tmp_path: Path) -> None:
    require_git_lfs()
    server, _, token = _drain_server(tmp_path, grace="60", body_timeout="1")
    auth = base64.b64encode(f"alice:{token}".encode()).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /acme/big.git/info/lfs/objects/batch HTTP/1.1\r\nHost: lfsd\r\n"
            b"Accept: application/vnd.git-lfs+json\r\nContent-Type: application/vnd.git-lfs+json\r\n"
            + f"Authorization: Basic {auth}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"operatio'
        )
        time.sleep(0.3)  # the request is in its handler, reading the body
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert b" 408 " in stalled.recv(1024).split(b"\r\n")[0]
        assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 5, "the drain waited for a body that was not moving"
