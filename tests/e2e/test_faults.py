"""Faults against real processes: kill -9 mid-upload, a full disk, clients that vanish, two processes side by side."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.client import batch, curl, start_curl
from tests.e2e.conftest import Deployment
from tests.e2e.harness import Server, open_unnamed, require_git_lfs, sha256_file, write_random, writing

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def _setup(server: Server) -> str:
    server.cli("user", "add", "alice")
    token = server.cli("token", "create", "alice").stdout.splitlines()[-1]
    server.cli("repo", "create", "acme/big")
    server.cli("repo", "grant", "acme/big", "alice", "write")
    return token


def _server_errors(log: str) -> list[str]:
    """Log lines that report a server fault (level error, or a traceback)."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("level") in ("error", "critical") or "exception" in entry:
                found.append(line)
        elif "Traceback" in line:
            found.append(line)
    return found


def test_kill_9_mid_upload_leaves_nothing_and_a_retry_succeeds(tmp_path: Path) -> None:
    require_git_lfs()
    source = tmp_path / "200m.bin"
    oid = write_random(source, 200 * MiB)
    data = tmp_path / "data"
    key = {"LFSD_SECRET_KEY": os.urandom(24).hex()}
    server = Server.start(data, extra_env=key)
    token = _setup(server)
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 200 * MiB)["actions"]["upload"]
    upload = start_curl(action, "--limit-rate", "20M", "-T", str(source))
    deadline = time.monotonic() + 20
    while not writing(data, oid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    upload.communicate(timeout=30)
    # The partial object was an unnamed file: it went with the process, and nothing has its name.
    assert not writing(data, oid)
    assert not (data / "objects" / oid[:2] / oid[2:4] / oid).exists()

    restarted = Server.start(data, extra_env=key)
    try:
        assert list((data / "tmp").iterdir()) == []
        assert not (data / "objects" / oid[:2] / oid[2:4] / oid).exists()
        entry = batch(restarted.url, "acme/big", "alice", token, "download", oid, 200 * MiB)
        assert entry["error"]["code"] == 404, "a partial object must never be visible"
        # The client's retry (a new batch request, as git-lfs makes) goes through, and the object is intact.
        retry = batch(restarted.url, "acme/big", "alice", token, "upload", oid, 200 * MiB)["actions"]["upload"]
        assert curl(retry, "-T", str(source)).stdout == "200 0"
        stored = data / "objects" / oid[:2] / oid[2:4] / oid
        assert sha256_file(stored) == oid
    finally:
        assert restarted.stop() == 0


def test_full_disk_gives_507_then_recovers_without_a_restart(tmp_path: Path) -> None:
    require_git_lfs()
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root and must be able to mount a small tmpfs for this test")
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        server = Server.start(tmp_path / "data", extra_env={"LFSD_STORAGE": f"file://{mount}"})
        try:
            token = _setup(server)
            source = tmp_path / "3m.bin"
            oid = write_random(source, 3 * MiB)
            action = batch(server.url, "acme/big", "alice", token, "upload", oid, 3 * MiB)["actions"]["upload"]
            result = subprocess.run(
                [
                    "curl",
                    "-sS",
                    "-H",
                    f"Authorization: {action['header']['Authorization']}",
                    "-T",
                    str(source),
                    "-D",
                    "-",
                    action["href"],
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "HTTP/1.1 507 " in result.stdout, result.stdout
            assert "application/vnd.git-lfs+json" in result.stdout and '"message"' in result.stdout
            assert list((mount / "tmp").iterdir()) == []
            subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
            assert curl(action, "-T", str(source)).stdout == "200 0"
            assert sha256_file(mount / "objects" / oid[:2] / oid[2:4] / oid) == oid
        finally:
            assert server.stop() == 0
            assert not _server_errors(server.log()), server.log()
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _mount_tmpfs(mount: Path, size: str) -> None:
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root and must be able to mount a small tmpfs for this test")
        pytest.skip("cannot mount a tmpfs here (not root)")


def _uploads_in_flight(server: Server) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lfsd_transfers_in_flight" and sample.labels.get("direction") == "upload"
    )


def test_a_declared_size_reserves_no_disk_before_its_bytes_arrive(tmp_path: Path) -> None:
    """A 1-byte PUT that declares 24 MiB and stalls must not make a real 12 MiB upload fail on a 32 MiB volume."""
    mount = tmp_path / "small"
    _mount_tmpfs(mount, "32m")
    try:
        server = Server.start(tmp_path / "data", extra_env={"LFSD_STORAGE": f"file://{mount}"})
        try:
            token = _setup(server)
            claimed = "c" * 64
            stall = batch(server.url, "acme/big", "alice", token, "upload", claimed, 24 * MiB)["actions"]["upload"]
            path = stall["href"].removeprefix(server.url)
            with socket.create_connection(("127.0.0.1", server.port)) as stalled:
                stalled.sendall(
                    f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: {stall['header']['Authorization']}\r\n"
                    f"Content-Length: {24 * MiB}\r\n\r\nx".encode()
                )
                deadline = time.monotonic() + 10
                while _uploads_in_flight(server) < 1:
                    assert time.monotonic() < deadline, "the stalled upload should be in flight"
                    time.sleep(0.05)
                source = tmp_path / "12m.bin"
                oid = write_random(source, 12 * MiB)
                action = batch(server.url, "acme/big", "alice", token, "upload", oid, 12 * MiB)["actions"]["upload"]
                assert curl(action, "-T", str(source)).stdout == "200 0"
            assert sha256_file(mount / "objects" / oid[:2] / oid[2:4] / oid) == oid
        finally:
            assert server.stop() == 0
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def big_object(tmp_path: Path, deployment: Deployment) -> Iterator[tuple[Server, str, str, Path]]:
    server = deployment.server
    token = _setup(server)
    source = tmp_path / "64m.bin"
    oid = write_random(source, 64 * MiB)
    action = batch(server.url, "acme/big", "alice", token, "upload", oid, 64 * MiB)["actions"]["upload"]
    assert curl(action, "-T", str(source)).stdout == "200 0"
    yield server, token, oid, source


def _raw(server: Server, request: bytes, body: bytes = b"", read: int = 0) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request + body)
        got = 0
        while got < read:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset


def test_clients_that_vanish_mid_transfer(big_object: tuple[Server, str, str, Path]) -> None:
    server, token, oid, source = big_object
    download = batch(server.url, "acme/big", "alice", token, "download", oid, 64 * MiB)["actions"]["download"]
    path = "/" + download["href"].split("/", 3)[3]
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {download['header']['Authorization']}\r\n\r\n"
    for _ in range(3):
        _raw(server, request.encode(), read=4 * MiB)

    other = write_random(source.with_name("other.bin"), 16 * MiB)
    upload = batch(server.url, "acme/big", "alice", token, "upload", other, 16 * MiB)["actions"]["upload"]
    path = "/" + upload["href"].split("/", 3)[3]
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {upload['header']['Authorization']}\r\n"
        f"Content-Length: {16 * MiB}\r\n\r\n"
    ).encode()
    _raw(server, head, source.with_name("other.bin").read_bytes()[: 5 * MiB])
    deadline = time.monotonic() + 10
    while list((server.data_dir / "tmp").iterdir()) or open_unnamed(server.data_dir):
        assert time.monotonic() < deadline, "the vanished upload's file stayed"
        time.sleep(0.05)
    # The server keeps serving everyone else.
    assert curl(download).stdout == f"200 {64 * MiB}"
    assert not _server_errors(server.log()), server.log()


def test_two_processes_share_one_database_and_object_store(tmp_path: Path) -> None:
    require_git_lfs()
    data = tmp_path / "data"
    key = {"LFSD_SECRET_KEY": os.urandom(24).hex()}
    first = Server.start(data, extra_env=key)
    second = Server.start(data, extra_env=key)
    try:
        deployment = Deployment(first, tmp_path)
        alice = deployment.user("alice")
        deployment.repo("acme/game", ("alice", "write"))
        token = alice.token
        # The same object through both at the same time: stored once, intact.
        source = tmp_path / "same.bin"
        oid = write_random(source, 48 * MiB)
        actions = [
            batch(server.url, "acme/game", "alice", token, "upload", oid, 48 * MiB)["actions"]["upload"]
            for server in (first, second)
        ]
        uploads = [start_curl(action, "-T", str(source)) for action in actions]
        assert [upload.communicate(timeout=120)[0] for upload in uploads] == ["200 0", "200 0"]
        assert sha256_file(data / "objects" / oid[:2] / oid[2:4] / oid) == oid
        assert list((data / "tmp").iterdir()) == []

        # Push through one, clone through the other.
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        files = {f"f{i}.bin": write_random(work / f"f{i}.bin", 100_000 + i) for i in range(10)}
        alice.git("add", ".", cwd=work)
        alice.git("commit", "-q", "-m", "via first", cwd=work)
        alice.git("push", "-q", "origin", "main", cwd=work)
        alice.git("clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "clone"))
        alice.git("config", "lfs.url", f"{second.url}/acme/game.git/info/lfs", cwd=tmp_path / "clone")
        alice.git("lfs", "pull", cwd=tmp_path / "clone")
        for name, file_oid in files.items():
            assert sha256_file(tmp_path / "clone" / name) == file_oid

        # Restart the first while the second serves: nothing is lost.
        assert first.stop() == 0
        first = Server.start(data, extra_env=key)
        fetched = batch(second.url, "acme/game", "alice", token, "download", oid, 48 * MiB)
        assert curl(fetched["actions"]["download"]).stdout == f"200 {48 * MiB}"
        for name, file_oid in files.items():
            entry = batch(first.url, "acme/game", "alice", token, "download", file_oid, 100_000 + int(name[1]))
            assert "download" in entry["actions"], name
    finally:
        assert first.stop() == 0
        assert second.stop() == 0


def test_slow_clients_do_not_tie_up_the_server(tmp_path: Path) -> None:
    require_git_lfs()
    server = Server.start(tmp_path / "data", extra_env={"LFSD_KEEPALIVE_TIMEOUT": "1"})
    try:
        slow = []
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers that never finish
            slow.append(sock)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b" 200 " in sock.recv(1024)
        assert time.monotonic() - started < 1, "a normal request waited behind slow clients"
        for sock in slow:  # the header timeout closes them
            assert sock.recv(1024) == b""
            sock.close()
        assert time.monotonic() - started < 5
    finally:
        assert server.stop() == 0
