"""The Git hosting commands: ``repo create`` makes the bare repository, ``repo enforce-locks`` flips its flag, and
the hook refuses what it cannot check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import cli, lfsd_env


def _flag(bare: Path) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "config", "--get", "lfsd.enforceLocks"], capture_output=True, text=True
    )
    return done.stdout.strip()


def test_create_then_enforce_locks_off_and_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli(data, "repo", "create", "acme/game")
    bare = data / "git" / "acme" / "game.git"
    assert (bare / "HEAD").read_text() == "ref: refs/heads/main\n"
    hook = bare / "hooks" / "pre-receive"
    assert hook.stat().st_mode & 0o111, "git runs only executable hooks"
    assert not list((data / "git" / "acme").glob(".new-*")), "the temporary build directory is gone"

    assert "off" in cli(data, "repo", "enforce-locks", "acme/game", "off").stdout
    assert _flag(bare) == "false"
    cli(data, "repo", "enforce-locks", "acme/game", "on")
    assert _flag(bare) == "true"

    missing = cli(data, "repo", "enforce-locks", "acme/none", "on", check=False)
    assert missing.returncode != 0 and "no repository acme/none" in missing.stderr


def test_a_moved_git_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = tmp_path / "elsewhere"
    done = subprocess.run(
        [sys.executable, "-m", "lfsd", "repo", "create", "acme/game"],
        env=lfsd_env(data, LFSD_GIT_ROOT=str(root)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "created" in done.stdout
    assert (root / "acme" / "game.git" / "HEAD").is_file()
    assert not (data / "git").exists()


def test_the_hook_refuses_a_push_it_cannot_attribute(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli(data, "repo", "create", "acme/game")
    bare = data / "git" / "acme" / "game.git"
    env = {**lfsd_env(data), "GIT_DIR": str(bare)}
    update = f"{'0' * 40} {'a' * 40} refs/heads/main\n"
    done = subprocess.run(
        [sys.executable, "-m", "lfsd", "hook", "pre-receive"], env=env, input=update, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "push refused" in done.stderr and "pusher is unknown" in done.stderr


def test_rename_and_delete_carry_the_bare_repository(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli(data, "repo", "create", "acme/game")
    cli(data, "repo", "create", "acme/taken")
    old, new = data / "git" / "acme" / "game.git", data / "git" / "studio" / "game.git"
    refused = cli(data, "repo", "rename", "acme/game", "acme/taken", check=False)
    assert refused.returncode != 0
    assert (old / "HEAD").is_file(), "a refused rename leaves the bare repository where it was"
    cli(data, "repo", "rename", "acme/game", "studio/game")
    assert (new / "HEAD").is_file() and not old.exists()
    cli(data, "repo", "delete", "studio/game", "--yes")
    assert not new.exists()
