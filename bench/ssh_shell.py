"""Start-up of the two processes sshd runs per connection (issue 15): ``lfsd ssh keys`` (AuthorizedKeysCommand) and
``lfsd ssh shell`` answering ``git-lfs-authenticate``, on the embedded SQLite database, plus a bare ``python -c pass``
for reference. Prints the median and best wall-clock milliseconds of ``--runs`` starts each. Nothing here asserts.

    .venv/bin/python bench/ssh_shell.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo bench"


def _lfsd(data: Path, *args: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LFSD_")}
    env["LFSD_DATA_DIR"] = str(data)
    done = subprocess.run([sys.executable, "-m", "lfsd", *args], env=env, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lfsd {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _time(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        timings.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{command} failed: {done.stderr.decode()}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-ssh-") as tmp:
        data = Path(tmp) / "data"
        _lfsd(data, "user", "add", "alice")
        _lfsd(data, "repo", "create", "acme/game")
        _lfsd(data, "repo", "grant", "acme/game", "alice", "read")
        _lfsd(data, "ssh", "key", "add", "alice", stdin=KEY)
        key_type, key = KEY.split()[:2]
        options = ["--data-dir", str(data)]
        line = _lfsd(data, "ssh", "keys", *options, "git", key_type, key)
        key_id = line.split("--key ")[1].split()[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LFSD_")}
        shell_env = {**env, "SSH_ORIGINAL_COMMAND": "git-lfs-authenticate acme/game download"}
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], env),
            (
                "lfsd ssh keys (known key)",
                [sys.executable, "-m", "lfsd", "ssh", "keys", *options, "git", key_type, key],
                env,
            ),
            (
                "lfsd ssh shell (authenticate)",
                [sys.executable, "-m", "lfsd", "ssh", "shell", "--key", key_id, *options],
                shell_env,
            ),
        ]
        print(f"{'case':34} {'median ms':>10} {'best ms':>9}   ({runs} runs, {os.cpu_count()} cores)")
        for name, command, case_env in cases:
            timings = _time(command, case_env, runs)
            print(f"{name:34} {statistics.median(timings):10.0f} {min(timings):9.0f}")


if __name__ == "__main__":
    main()
