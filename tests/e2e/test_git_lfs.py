"""The real git-lfs client against a real lfsd process."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, Server, free_port, require_git_lfs, sha256_file, write_random

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def _clone(user: GitUser, origin: Path, dest: Path, env: dict[str, str] | None = None) -> Path:
    user.git("clone", "-q", str(origin), str(dest), env=env)
    return dest


def test_push_clone_pull_fetch_all(any_deployment: Deployment) -> None:
    deployment = any_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    sizes = {"empty.bin": 0, "one.bin": 1, "mib.bin": MiB, "big.bin": 100 * MiB}
    expected = {name: write_random(work / name, size) for name, size in sizes.items()}
    small = work / "small"
    small.mkdir()
    for i in range(300):
        expected[f"small/{i:03}.bin"] = write_random(small / f"{i:03}.bin", 100 + i)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    out = alice.git("push", "-q", "origin", "main", cwd=work)
    assert "error" not in out.lower(), out

    # A second commit changes one file, so that fetch --all has history to fetch.
    old_one = expected["one.bin"]
    expected["one.bin"] = write_random(work / "one.bin", 2)
    alice.git("commit", "-q", "-am", "change", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    clone = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "clone")
    for name, oid in expected.items():
        assert sha256_file(clone / name) == oid, name

    # Clone without smudge, then git lfs pull.
    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert (lazy / "big.bin").stat().st_size < 200  # still a pointer
    alice.git("lfs", "pull", cwd=lazy)
    assert sha256_file(lazy / "big.bin") == expected["big.bin"]

    # fetch --all brings the objects of every ref and every commit, including the old version.
    alice.git("lfs", "fetch", "--all", cwd=lazy)
    objects = lazy / ".git" / "lfs" / "objects" / old_one[:2] / old_one[2:4] / old_one
    assert objects.exists()
    alice.git("lfs", "fsck", cwd=lazy)


def test_two_users_two_repositories_are_isolated(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    bob = deployment.user("bob")
    deployment.repo("alice/art", ("alice", "write"))
    deployment.repo("bob/code", ("bob", "write"))
    work = alice.new_repo(deployment.tmp / "alice-work", deployment.tmp / "alice.git", "alice/art")
    write_random(work / "secret.bin", 5000)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "secret", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    # Bob can clone the Git history (on disk), but lfsd refuses him alice's objects.
    clone = _clone(bob, deployment.tmp / "alice.git", deployment.tmp / "bob-clone", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    out = bob.git("lfs", "pull", cwd=clone, check=False)
    assert "repository not found" in out.lower(), out
    assert (clone / "secret.bin").stat().st_size < 200  # still a pointer

    # Pointing his LFS at his own repository does not help: bob/code does not hold the object.
    bob.git("config", "lfs.url", f"{deployment.server.url}/bob/code.git/info/lfs", cwd=clone)
    out = bob.git("lfs", "pull", cwd=clone, check=False)
    assert "object does not exist" in out.lower(), out
    assert (clone / "secret.bin").stat().st_size < 200, out


def test_interrupted_download_resumes_with_range(deployment: Deployment) -> None:
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    oid = write_random(work / "big.bin", 8 * MiB)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "big", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    # The state an interrupted download leaves: the first part of the object in lfs/incomplete.
    incomplete = lazy / ".git" / "lfs" / "incomplete"
    incomplete.mkdir(parents=True)
    with (work / "big.bin").open("rb") as src:
        (incomplete / f"{oid}.part").write_bytes(src.read(3 * MiB + 7))
    out = alice.git("lfs", "pull", cwd=lazy, env={"GIT_TRACE": "1"})
    assert "server accepted resume download request" in out, out
    assert sha256_file(lazy / "big.bin") == oid


def test_push_clone_pull_on_s3(s3_deployment: Deployment) -> None:
    deployment = s3_deployment
    alice = deployment.user("alice")
    deployment.repo("acme/game", ("alice", "write"))
    work = alice.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    sizes = {"empty.bin": 0, "one.bin": 1, "mib.bin": MiB, "multipart.bin": 23 * MiB}
    expected = {name: write_random(work / name, size) for name, size in sizes.items()}
    (work / "small").mkdir()
    for i in range(50):
        expected[f"small/{i:02}.bin"] = write_random(work / "small" / f"{i:02}.bin", 1000 + i)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    clone = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "clone")
    for name, oid in expected.items():
        assert sha256_file(clone / name) == oid, name
    lazy = _clone(alice, deployment.tmp / "origin.git", deployment.tmp / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
    alice.git("lfs", "pull", cwd=lazy)
    alice.git("lfs", "fsck", cwd=lazy)
    assert sha256_file(lazy / "multipart.bin") == expected["multipart.bin"]
    assert not any((deployment.server.data_dir / "objects").rglob("*.bin"))  # bodies went to S3, not to disk
    routes = [json.loads(line)["route"] for line in deployment.server.log().splitlines() if '"lfsd.access"' in line]
    if "LFSD_S3_DIRECT" in deployment.env:
        # Bodies went straight to S3; lfsd only answered batch and verify requests.
        assert routes.count("/{repo}/info/lfs/objects/{oid}/verify") == 53
        assert "/{repo}/info/lfs/objects/{oid}" not in routes
    else:
        assert routes.count("/{repo}/info/lfs/objects/{oid}") >= 53


class _CountingRelay:
    """A TCP relay in front of lfsd that counts the connections clients open through it."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        # Daemons: one stuck in recv() must not keep pytest from exiting (closing a socket does not wake it).
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=_pump, args=(source, sink), daemon=True)
                self._threads.append(pump)
                pump.start()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked on it, which close() alone does not
            sock.close()
        for thread in self._threads:
            thread.join(timeout=10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(256 * 1024):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the other direction or close() ended the connection


@contextmanager
def _relayed_lfsd(tmp: Path) -> Iterator[tuple[Server, _CountingRelay]]:
    port = free_port()
    relay = _CountingRelay(port)
    server = Server.start(tmp / "data", port=port, args=("--public-url", f"http://127.0.0.1:{relay.port}"))
    try:
        yield server, relay
    finally:
        assert server.stop() == 0, server.log()
        relay.close()


def test_a_signed_in_fetch_downloads_over_the_batch_connection(tmp_path: Path) -> None:
    """git-lfs keeps one connection pool per access mode: had the batch response called lfsd's links
    "authenticated", every download of a signed-in user would open a second connection (issue 17)."""
    require_git_lfs()
    with _relayed_lfsd(tmp_path) as (server, relay):
        server.cli("user", "add", "alice")
        token = server.cli("token", "create", "alice").stdout.strip().splitlines()[-1]
        server.cli("repo", "create", "acme/game")
        server.cli("repo", "grant", "acme/game", "alice", "write")
        alice = GitUser(tmp_path / "home", "alice", token, f"http://127.0.0.1:{relay.port}")
        work = alice.new_repo(tmp_path / "work", tmp_path / "origin.git", "acme/game")
        oid = write_random(work / "one.bin", 1024 * 1024)
        alice.git("add", ".", cwd=work)
        alice.git("commit", "-q", "-m", "one", cwd=work)
        alice.git("push", "-q", "origin", "main", cwd=work)
        lazy = _clone(alice, tmp_path / "origin.git", tmp_path / "lazy", env={"GIT_LFS_SKIP_SMUDGE": "1"})
        alice.git("lfs", "fetch", cwd=lazy)  # learns that the server wants credentials (a 401 first)
        shutil.rmtree(lazy / ".git" / "lfs" / "objects")
        before = relay.accepted
        alice.git("lfs", "fetch", cwd=lazy)
        assert relay.accepted - before == 1
        assert (lazy / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
