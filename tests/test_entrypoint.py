"""deploy/entrypoint.sh, the container's entry point: ``serve`` under ``python -OO``, every other command (and
``serve --help``) with its help texts, which are docstrings that ``-OO`` would drop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[1] / "deploy" / "entrypoint.sh"


def _run(args: list[str], python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={**os.environ, "LFSD_PYTHON": python},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def echo_python(tmp_path: Path) -> str:
    """A stand-in interpreter that prints the arguments it was started with."""
    script = tmp_path / "python"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("args", "interpreter_flags"),
    [
        (["serve"], ["-OO", "-P"]),
        (["serve", "--workers", "2"], ["-OO", "-P"]),
        (["serve", "--help"], ["-P"]),
        (["user", "add", "serve"], ["-P"]),
        (["gc", "--json"], ["-P"]),
        ([], ["-P"]),
    ],
)
def test_only_the_server_runs_optimized(args: list[str], interpreter_flags: list[str], echo_python: str) -> None:
    result = _run(args, echo_python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [*interpreter_flags, "-m", "lfsd", *args]


def test_a_command_run_through_it_shows_its_help_texts() -> None:
    result = _run(["--help"], sys.executable)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1]
    # Every listed command has its description beside it (under -OO the lines would hold the names alone).
    lines = [line.split() for line in commands.strip().splitlines()]
    assert lines and all(len(words) > 1 for words in lines), commands
    user = _run(["user", "--help"], sys.executable)
    assert user.returncode == 0 and "Usage:" in user.stdout
    assert all(len(line.split()) > 1 for line in user.stdout.split("Commands:", 1)[1].strip().splitlines())
