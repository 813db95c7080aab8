"""The ``lfsd`` command line, run as a real process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import pytest

from lfsd.cli import main
from lfsd.config import Settings
from lfsd.core.auth import Permission
from lfsd.core.repo import RepoPath
from lfsd.db.metadata import Metadata
from lfsd.db.schema import SCHEMA_HEAD
from lfsd.resources import open_metadata
from tests.e2e.harness import cli


def _one_line_error(result_stderr: str) -> None:
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr


def _meta_check(data_dir: Path, check: object) -> None:
    async def run() -> None:
        meta = await open_metadata(Settings(data_dir=data_dir))
        try:
            assert callable(check)
            await check(meta)
        finally:
            await meta.close()

    asyncio.run(run())


def test_admin_workflow_on_a_fresh_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    assert "added" in cli(data, "user", "add", "alice").stdout
    token = cli(data, "token", "create", "alice").stdout.splitlines()[-1]
    assert token.startswith("lfsd_")
    cli(data, "user", "add", "carol", "--admin", "--password-stdin", stdin="s3cret pass\n")
    cli(data, "repo", "create", "acme/game")
    cli(data, "repo", "create", "acme/open", "--public")
    cli(data, "repo", "grant", "acme/game", "alice", "write")

    async def check(meta: Metadata) -> None:
        identity = await meta.users.identity_for_token(token)
        assert identity is not None and identity.name == "alice" and not identity.is_admin
        carol = await meta.users.identity_for_password("carol", "s3cret pass")
        assert carol is not None and carol.is_admin
        repo = await meta.repos.find(RepoPath("acme/game"))
        assert repo is not None and not repo.is_public
        assert await meta.repos.grant_of(repo, identity.user_id) is Permission.WRITE
        public = await meta.repos.find(RepoPath("acme/open"))
        assert public is not None and public.is_public

    _meta_check(data, check)
    assert f"revision {SCHEMA_HEAD}" in cli(data, "migrate").stdout


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("token", "create", "ghost"), None),
        (("repo", "grant", "acme/none", "alice", "read"), None),
        (("user", "add", "dupe"), None),
        (("repo", "create", "dup/repo"), None),
        (("user", "add", "x", "--password-stdin"), "\n"),
        (("migrate", "--database-url", "oracle://scott:tiger@db/x"), None),
        (("migrate", "--database-url", "::not a url::"), None),
    ],
)
def test_errors_are_one_line_and_non_zero(tmp_path: Path, args: tuple[str, ...], stdin: str | None) -> None:
    data = tmp_path / "d"
    cli(data, "user", "add", "dupe")
    cli(data, "repo", "create", "dup/repo")
    result = cli(data, *args, stdin=stdin, check=False)
    assert result.returncode != 0
    _one_line_error(result.stderr)
    assert "tiger" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [("repo", "create", "../etc"), ("repo", "grant", "acme/x", "u", "owner"), ("repo", "create", "a//b")],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = cli(tmp_path / "d", *args, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_serve_rejects_bad_settings_in_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path / "d", "serve", "--listen", "nonsense", check=False)
    assert result.returncode != 0
    _one_line_error(result.stderr)


def test_schema_head_matches_alembic() -> None:
    from lfsd.db.migrate import head_revision

    assert head_revision() == SCHEMA_HEAD


def test_every_command_says_what_it_does() -> None:
    """``lfsd … --help`` lists each command with its description; one built without (a ``__doc__`` set after the
    decorator had made the command) showed a bare name."""

    def undescribed(command: click.Command, path: str) -> list[str]:
        found = [] if (command.help or command.short_help) else [path]
        if isinstance(command, click.Group):
            # Through list_commands/get_command: lazily loaded groups (ssh, gc, quota) are not in ``commands``.
            context = click.Context(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None, f"{path} {name}"
                found += undescribed(sub, f"{path} {name}")
        return found

    assert undescribed(main, "lfsd") == []
