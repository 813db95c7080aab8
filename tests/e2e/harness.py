"""Real processes: ``lfsd serve`` on a free loopback port, the ``lfsd`` CLI, and git with git-lfs per user."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def require_git_lfs() -> None:
    if shutil.which("git-lfs") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("git-lfs is required in CI (make setup installs it)")
        pytest.skip("git-lfs is not installed (make setup installs it)")


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their SHA-256 (the LFS oid)."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * 1024 * 1024))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def open_unnamed(data_dir: Path) -> list[str]:
    """The unnamed (``O_TMPFILE``) files that any process holds open in the object store at ``data_dir``: uploads
    being written (``/proc/PID/fd/N`` reads ``DATA/objects/ab/cd/#INODE (deleted)``)."""
    prefix = f"{data_dir}/objects/"
    found = []
    for fds in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [str(fd.readlink()) for fd in fds.iterdir()]
        except OSError:  # the process ended, or a link went while it was read
            continue
        found += [link for link in links if link.startswith(prefix) and link.endswith(" (deleted)") and "/#" in link]
    return found


def writing(data_dir: Path, oid: str) -> bool:
    """Whether the object ``oid`` is being written into the store at ``data_dir``: an unnamed file open in its shard
    directory, or a named temp file (file systems without ``O_TMPFILE``)."""
    shard = f"{data_dir}/objects/{oid[:2]}/{oid[2:4]}/#"
    return any((data_dir / "tmp").glob(f"{oid}*")) or any(link.startswith(shard) for link in open_unnamed(data_dir))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> bool:
    """Whether ``process`` accepts connections on 127.0.0.1:``port`` within ``timeout``; False once it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def lfsd_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LFSD_")}
    # No balancer in front by default, so a stop need not wait for one to move away (``extra`` may set a delay).
    env.update({"LFSD_DATA_DIR": str(data_dir), "LFSD_DRAIN_DELAY": "0", "PYTHONUNBUFFERED": "1", **extra})
    if database_url is not None:
        env["LFSD_DATABASE_URL"] = database_url
    return env


def cli(
    data_dir: Path,
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    database_url: str | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "lfsd", *args],
        env=lfsd_env(data_dir, database_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"lfsd {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@dataclass
class Server:
    """A running ``lfsd serve``."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    database_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        extra_env: dict[str, str] | None = None,
        database_url: str | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> Server:
        """``port``: a given one (a replica restarted where its balancer expects it), else a free one."""
        port = port or free_port()
        log_path = data_dir.parent / f"lfsd-{port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "lfsd", "serve", "--listen", f"127.0.0.1:{port}", *args],
                env=lfsd_env(data_dir, database_url, **(extra_env or {})),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(data_dir, port, process, log_path, database_url)
        server.wait_ready()
        return server

    def wait_ready(self, timeout: float = 30) -> None:
        if not listening(self.port, self.process, timeout):
            if self.process.poll() is not None:
                raise AssertionError(f"lfsd exited with {self.process.returncode}: {self.log()}")
            raise AssertionError(f"lfsd did not start listening: {self.log()}")

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``lfsd`` on this server's data dir and database."""
        return cli(self.data_dir, *args, stdin=stdin, check=check, database_url=self.database_url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("VmHWM not found")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class GitUser:
    """git + git-lfs with its own HOME, credentials stored by the ``store`` helper."""

    home: Path
    name: str
    token: str
    server_url: str
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": f"{self.name}@example.com",
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": f"{self.name}@example.com",
            "LANG": "C.UTF-8",
        }
        host = self.server_url.removeprefix("http://")
        (self.home / ".git-credentials").write_text(f"http://{self.name}:{self.token}@{host}\n")
        self.git("config", "--global", "credential.helper", "store")
        self.git("config", "--global", "init.defaultBranch", "main")
        self.git("config", "--global", "lfs.locksverify", "false")
        self.git("lfs", "install", "--skip-repo")

    def git(self, *args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or self.home,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout + result.stderr

    def new_repo(self, work: Path, origin: Path, repo: str) -> Path:
        """A working copy whose origin is a bare repo on disk and whose LFS server is lfsd's ``repo``."""
        subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True, env=self.env)
        self.git("init", "-q", str(work))
        self.git("remote", "add", "origin", str(origin), cwd=work)
        (work / ".lfsconfig").write_text(f'[lfs]\n\turl = "{self.server_url}/{repo}.git/info/lfs"\n')
        self.git("lfs", "track", "*.bin", cwd=work)
        self.git("add", ".lfsconfig", ".gitattributes", cwd=work)
        self.git("commit", "-q", "-m", "lfs setup", cwd=work)
        return work
