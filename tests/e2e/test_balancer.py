"""A rolling restart behind a real nginx while git-lfs pushes: nothing lost, no 5xx, no request retried twice.

Two ``lfsd serve`` replicas share PostgreSQL, one object directory and one secret key; nginx balances them with
keep-alive upstream connections and streamed request bodies, configured as docs/operations.md advises. Each replica
in turn gets SIGTERM and is restarted on its port, once after nginx has been reloaded without it (as a Kubernetes
endpoint removal does) and once with no warning at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import migrated_url
from tests.databases import Server as DatabaseServer
from tests.e2e.harness import GitUser, Server, free_port, require_git_lfs, sha256_file, write_random

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DRAIN_DELAY = 2.0
GRACE = 60.0
FAIL_TIMEOUT = 1  # seconds nginx leaves a replica alone after a failed connection
OBJECTS_PER_PUSH = 100
OBJECT_SIZE = 64 * 1024


def require_nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required in CI (make setup installs nginx-light)")
        pytest.skip("nginx is not installed (make setup installs nginx-light)")
    return found


# What docs/operations.md advises, plus a log line per request: its status and every upstream attempt's.
NGINX_CONF = """\
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    log_format attempts '$status "$upstream_status" $request_method $uri';
    access_log {dir}/access.log attempts;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    upstream lfsd {{
{servers}
        keepalive 32;
        keepalive_timeout 1s;  # below LFSD_DRAIN_DELAY: nginx closes the connections it does not use itself
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://lfsd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
            proxy_next_upstream error timeout http_503;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    binary: str
    dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, upstreams: list[int]) -> None:
        """Write the configuration for ``upstreams``; start nginx, or reload it and wait for the new worker."""
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={FAIL_TIMEOUT}s;" for p in upstreams
        )
        user = "user root;" if os.geteuid() == 0 else ""  # workers would otherwise run as nobody, outside tmp_path
        conf = NGINX_CONF.format(user=user, dir=self.dir, port=self.port, servers=servers)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "nginx.conf").write_text(conf)
        if self.process is None:
            command = [
                self.binary,
                "-p",
                str(self.dir),
                "-c",
                str(self.dir / "nginx.conf"),
                "-e",
                str(self.dir / "error.log"),
            ]
            self.process = subprocess.Popen(
                [*command, "-g", "daemon off;"], stderr=subprocess.STDOUT, stdout=subprocess.DEVNULL
            )
            _wait_for_port(self.port, self.process)
            return
        workers = self.error_log().count("start worker process")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.error_log().count("start worker process") <= workers:  # the reload has started a new one
            assert time.monotonic() < deadline, self.error_log()
            time.sleep(0.05)

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def access_lines(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@dataclass
class Pusher:
    """Pushes commit after commit of new LFS objects until told to stop; remembers every oid and every failure."""

    user: GitUser
    work: Path
    oids: dict[str, int] = field(default_factory=dict)
    pushes: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while not self.stop.is_set() or self.pushes == 0:
                for i in range(OBJECTS_PER_PUSH):
                    self.oids[write_random(self.work / f"p{self.pushes}-{i}.bin", OBJECT_SIZE)] = OBJECT_SIZE
                self.user.git("add", ".", cwd=self.work)
                self.user.git("commit", "-q", "-m", f"push {self.pushes}", cwd=self.work)
                self.user.git("push", "-q", "origin", "main", cwd=self.work)
                self.pushes += 1
        except AssertionError as exc:
            self.failures.append(str(exc))


def _refused_from(port: int) -> float:
    """The wall-clock time from which ``port`` refuses connections."""
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return time.time()
        time.sleep(0.02)
    raise AssertionError(f"port {port} still accepts connections")


def _requests_started_after(log: str, moment: float) -> list[str]:
    """The requests in a JSON request log that started after ``moment`` (wall-clock seconds)."""
    late = []
    for line in log.splitlines():
        if line.startswith("{") and '"lfsd.access"' in line:
            entry = json.loads(line)
            started = datetime.fromisoformat(entry["ts"]).timestamp() - entry["duration_s"]
            if started > moment:
                late.append(f"{entry['method']} {entry['route']} {entry['status']} at {started - moment:+.3f} s")
    return late


def _puts(nginx: Nginx) -> int:
    return sum(1 for line in nginx.access_lines() if " PUT " in line)


def _wait_for_uploads(nginx: Nginx, pusher: Pusher, more: int) -> None:
    """Until ``more`` uploads have gone through since now: a push is under way."""
    target = _puts(nginx) + more
    deadline = time.monotonic() + 60
    while _puts(nginx) < target:
        assert not pusher.failures, pusher.failures
        assert time.monotonic() < deadline, "the push made no progress"
        time.sleep(0.02)


@pytest.mark.parametrize("removed_first", [True, False], ids=["removed-first", "no-warning"])
def test_rolling_restart_behind_nginx_loses_nothing(
    tmp_path: Path, migrated_databases: dict[str, tuple[DatabaseServer, str]], removed_first: bool
) -> None:
    require_git_lfs()
    nginx = Nginx(require_nginx(), tmp_path / "nginx", free_port())
    database_url = migrated_url("postgresql", migrated_databases)
    ports = [free_port(), free_port()]
    env = {
        "LFSD_STORAGE": f"file://{tmp_path / 'objects'}",
        "LFSD_SECRET_KEY": os.urandom(24).hex(),
        "LFSD_PUBLIC_URL": nginx.url,  # transfer links point at the balancer, as in a real deployment
        "LFSD_DRAIN_DELAY": str(DRAIN_DELAY),
        "LFSD_SHUTDOWN_GRACE": str(GRACE),
        "LFSD_FSYNC": "false",
        "LFSD_LOG_FORMAT": "json",
    }

    def start(index: int) -> Server:
        return Server.start(
            tmp_path / f"replica{index}" / "data", database_url=database_url, extra_env=env, port=ports[index]
        )

    replicas = [start(0), start(1)]
    old_logs: list[str] = []
    pusher: Pusher | None = None
    thread: threading.Thread | None = None
    try:
        nginx.route(ports)
        admin = replicas[0]
        admin.cli("user", "add", "alice")
        token = admin.cli("token", "create", "alice").stdout.strip().splitlines()[-1]
        admin.cli("repo", "create", "acme/game")
        admin.cli("repo", "grant", "acme/game", "alice", "write")
        alice = GitUser(tmp_path / "home", "alice", token, nginx.url)
        alice.git("config", "--global", "lfs.concurrenttransfers", "16")
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        pusher = Pusher(alice, work)
        thread = threading.Thread(target=pusher.run, daemon=True)  # a stuck push must not keep pytest from exiting
        thread.start()

        for index in (0, 1):
            _wait_for_uploads(nginx, pusher, 30)
            if removed_first:
                nginx.route([port for i, port in enumerate(ports) if i != index])
            old = replicas[index]
            signalled = time.monotonic()
            old.process.send_signal(signal.SIGTERM)
            stopped_listening = _refused_from(ports[index])
            assert old.process.wait(timeout=GRACE) == 0, old.log()
            late = _requests_started_after(old.log(), stopped_listening + 0.2)
            assert not late, f"requests reached the old replica over old connections after it stopped listening: {late}"
            assert time.monotonic() - signalled < DRAIN_DELAY + 10, "the drain outlasted the transfers in flight"
            assert "Traceback" not in old.log(), old.log()
            old_logs.append(old.log())
            replicas[index] = start(index)
            if removed_first:
                nginx.route(ports)
            time.sleep(FAIL_TIMEOUT + 0.5)  # nginx may have marked the replica failed: let it count again
        _wait_for_uploads(nginx, pusher, 30)
    finally:
        if pusher is not None and thread is not None:
            pusher.stop.set()
            thread.join(timeout=300)
        for replica in replicas:
            assert replica.stop() == 0, replica.log()
        nginx.stop()

    assert not pusher.failures, pusher.failures
    lines = nginx.access_lines()
    failed = [line for line in lines if line.startswith("5")]
    assert not failed, f"5xx to the client: {failed}\n" + "\n".join(old_logs)
    attempts = [line.split('"')[1] for line in lines]
    assert all(a.count(",") <= 1 for a in attempts), [a for a in attempts if a.count(",") > 1]
    puts = Counter(line.split()[-1] for line in lines if " PUT " in line)
    assert puts and max(puts.values()) == 1, [uri for uri, count in puts.items() if count > 1]
    for oid in pusher.oids:
        stored = tmp_path / "objects" / "objects" / oid[:2] / oid[2:4] / oid
        assert sha256_file(stored) == oid
    assert len(pusher.oids) >= 3 * OBJECTS_PER_PUSH
