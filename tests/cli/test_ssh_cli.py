"""``lfsd ssh key …``, ``lfsd ssh keys`` and ``lfsd ssh shell`` as real processes on every database: exit codes, the
one authorized_keys line sshd gets, and the forced command serving (or refusing) what the client asks."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import cli

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo alice@laptop"
OTHER = ED25519.replace("IBPm", "IBPn")


def _ssh(
    data: Path, database_url: str | None, *args: str, command: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m lfsd ssh …`` with no LFSD_* environment, as sshd runs it: the settings come as options."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LFSD_", "SSH_ORIGINAL_COMMAND"))}
    if command is not None:
        env["SSH_ORIGINAL_COMMAND"] = command
    options = ["--data-dir", str(data), *(["--database-url", database_url] if database_url else [])]
    return subprocess.run(
        [sys.executable, "-m", "lfsd", "ssh", *args, *options],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_are_added_listed_and_removed(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "d"

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(data, *args, stdin=stdin, check=check, database_url=database_url)

    run("user", "add", "alice")
    run("user", "add", "bob")
    added = run("ssh", "key", "add", "alice", "--label", "laptop", stdin=ED25519 + "\n").stdout
    assert "ssh-ed25519 SHA256:" in added
    listed: Any = json.loads(run("ssh", "key", "list", "alice", "--json").stdout)
    (key,) = listed["keys"]
    assert (key["user"], key["type"], key["label"], key["last_used_at"]) == ("alice", "ssh-ed25519", "laptop", None)
    assert key["fingerprint"] in added and key["fingerprint"].startswith("SHA256:")
    assert "laptop" in run("ssh", "key", "list", "alice").stdout

    # One key, one user: the same key for bob (or again for alice) is a conflict.
    assert run("ssh", "key", "add", "bob", stdin=ED25519, check=False).returncode == 4
    refused = run("ssh", "key", "add", "bob", stdin="ssh-dss AAAA", check=False)
    assert refused.returncode == 6
    assert (
        refused.stderr.strip()
        == "Error: DSA keys are refused (weak, and removed from OpenSSH): use ssh-keygen -t ed25519"
    )
    assert run("ssh", "key", "add", "carol", stdin=OTHER, check=False).returncode == 3
    # Without --label, the key's comment labels it.
    run("ssh", "key", "add", "bob", stdin=OTHER)
    (bobs,) = json.loads(run("ssh", "key", "list", "bob", "--json").stdout)["keys"]
    assert bobs["label"] == "alice@laptop"

    assert "removed" in run("ssh", "key", "remove", str(key["id"])).stdout
    assert run("ssh", "key", "remove", str(key["id"]), check=False).returncode == 3
    assert json.loads(run("ssh", "key", "list", "alice", "--json").stdout) == {"keys": []}
    audit = run("audit", "--json").stdout
    assert "sshkey.add" in audit and "sshkey.remove" in audit


def test_authorized_keys_command_and_forced_shell(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "d"
    cli(data, "user", "add", "alice", database_url=database_url)
    cli(data, "repo", "create", "acme/game", database_url=database_url)
    cli(data, "repo", "grant", "acme/game", "alice", "read", database_url=database_url)
    cli(data, "ssh", "key", "add", "alice", stdin=ED25519, database_url=database_url)
    key_type, key = ED25519.split()[:2]

    found = _ssh(data, database_url, "keys", "git", key_type, key, "--public-url", "https://lfs.example/")
    assert found.returncode == 0, found.stderr
    line = found.stdout
    assert line.count("\n") == 1 and line.endswith(f" {key_type} {key}\n")
    options, _, _ = line.partition(f" {key_type} ")
    assert options.startswith('restrict,command="') and options.endswith('"')
    command = shlex.split(options.removeprefix('restrict,command="').removesuffix('"'))
    assert command[:4] == [sys.executable, "-P", "-m", "lfsd"] and command[4:7] == ["ssh", "shell", "--key"]
    assert command[command.index("--data-dir") + 1] == str(data.resolve())
    assert command[command.index("--public-url") + 1] == "https://lfs.example"

    # Other SSH users, unknown keys, garbage: nothing, and exit 0 (sshd then tries the client's next key).
    for args in (("root", key_type, key), ("git", key_type, OTHER.split()[1]), ("git", "ssh-ed25519", "AAAA")):
        nothing = _ssh(data, database_url, "keys", *args)
        assert (nothing.returncode, nothing.stdout) == (0, ""), nothing.stderr

    key_id = command[command.index("--key") + 1]
    shell = ("shell", "--key", key_id, "--public-url", "https://lfs.example")
    answer = _ssh(data, database_url, *shell, command="git-lfs-authenticate 'acme/game.git' download")
    assert answer.returncode == 0, answer.stderr
    document = json.loads(answer.stdout)
    assert document["href"] == "https://lfs.example/acme/game.git/info/lfs"
    assert document["header"]["Authorization"].startswith("Bearer lfsdssh1.") and document["expires_in"] == 900

    for wanted, message in [
        (None, "interactive logins are not allowed"),
        ("bash", "'bash' is not served"),
        ("git-lfs-authenticate acme/game upload", "write access to this repository is required"),
    ]:
        refused = _ssh(data, database_url, *shell, command=wanted)
        assert (refused.returncode, refused.stdout) == (1, ""), refused.stderr
        assert refused.stderr.count("\n") == 1 and message in refused.stderr, refused.stderr

    # git-lfs-transfer is served: the capabilities, then the end of the client's input ends the session.
    transfer = _ssh(data, database_url, *shell, command="git-lfs-transfer 'acme/game.git' download")
    assert transfer.returncode == 0 and "version=1" in transfer.stdout, transfer.stderr

    cli(data, "user", "disable", "alice", database_url=database_url)
    assert _ssh(data, database_url, "keys", "git", key_type, key).stdout == ""
    gone = _ssh(data, database_url, *shell, command="git-lfs-authenticate acme/game download")
    assert gone.returncode == 1 and "removed or its user disabled" in gone.stderr


@pytest.mark.parametrize("args", [("keys", "git"), ("shell",), ("shell", "--key", "x")])
def test_bad_usage_is_one_line_and_non_zero(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = _ssh(tmp_path, None, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("command", ["keys", "shell"])
def test_a_database_that_is_down_is_one_line_for_sshd_and_the_client(tmp_path: Path, command: str) -> None:
    down = "postgresql://lfsd@127.0.0.1:9/lfsd"  # nothing listens on the discard port
    args = ("git", *ED25519.split()[:2]) if command == "keys" else ("--key", "1")
    result = _ssh(tmp_path, down, command, *args, command="git-lfs-authenticate acme/game download")
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert result.stderr == "lfsd: the metadata database is unavailable\n"
