"""A real OpenSSH ``sshd`` on a free loopback port, asking lfsd for keys (``AuthorizedKeysCommand``), and an SSH
client set up for it (its own key and known-hosts file). Skipped without sshd locally; a failure in CI."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import free_port

SSHD = "/usr/sbin/sshd"


def require_sshd() -> None:
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sshd is required in CI (make setup installs openssh-server)")
        pytest.skip("sshd is not installed (make setup installs openssh-server)")
    if os.geteuid() != 0:
        # AuthorizedKeysCommandUser and the ownership rules sshd applies to the command need root.
        if os.environ.get("CI") == "true":
            pytest.fail("the sshd tests run as root in CI")
        pytest.skip("the sshd tests need root")


def keygen(path: Path, kind: str = "ed25519") -> str:
    """A new key pair at ``path``; its public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class Sshd:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host_public_key: str
    user: str

    @classmethod
    def start(cls, directory: Path, data_dir: Path, public_url: str, database_url: str | None = None) -> Sshd:
        directory.mkdir(parents=True, exist_ok=True)
        host_key = directory / "host_ed25519"
        host_public = keygen(host_key)
        port = free_port()
        user = "root"  # the login sshd can run the forced command as here; production uses a `git` account
        options = ["--ssh-user", user, "--data-dir", str(data_dir), "--public-url", public_url]
        if database_url is not None:
            options += ["--database-url", database_url]
        keys_command = " ".join(shlex.quote(word) for word in [sys.executable, "-m", "lfsd", "ssh", "keys", *options])
        # The privilege separation directory Debian's sshd expects (a package install creates it at boot).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = directory / "sshd_config"
        config.write_text(
            f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {directory}/sshd.pid
AuthorizedKeysFile none
AuthorizedKeysCommand {keys_command} %u %t %k
AuthorizedKeysCommandUser {user}
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv GIT_PROTOCOL
LogLevel VERBOSE
"""
        )
        log_path = directory / "sshd.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log)
        server = cls(port, process, log_path, f"[127.0.0.1]:{port} {host_public}", user)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"sshd exited with {process.returncode}: {server.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return server
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sshd did not start: {server.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, repo: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}/{repo}.git"

    def client_command(self, directory: Path, key: Path) -> str:
        """A GIT_SSH_COMMAND: this key only, this server's host key only, never a prompt."""
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(self.host_public_key + "\n")
        return (
            f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes"
            f" -o UserKnownHostsFile={known_hosts}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
