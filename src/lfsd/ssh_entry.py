"""``lfsd ssh keys`` (sshd's AuthorizedKeysCommand) and ``lfsd ssh shell`` (the forced command it names): the
composition of the short-lived SSH processes.

sshd starts one of each per connection (and git-lfs may connect several times per push), so both start lean: no
click, aiohttp, object store or password hashing; ``python -m lfsd ssh …`` reaches them without the rest of the
command line (``lfsd/__main__.py``). sshd runs both with an empty environment: the settings they need come as
options, which ``ssh keys`` passes on to the ``ssh shell`` command it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from lfsd.config import Settings, SettingsError
from lfsd.core.auth import Identity
from lfsd.core.errors import LfsError
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_auth import SshAuthSigner
from lfsd.core.ssh_command import SessionStreams
from lfsd.core.sshkeys import parse_offered_key
from lfsd.db.database import Database
from lfsd.db.repos import SqlRepoDirectory
from lfsd.db.ssh_keys import SqlSshKeys
from lfsd.ssh.shell import Refused, Transfer

# The options both commands take, passed through from `ssh keys` to the `ssh shell` it names.
_PASSED: tuple[tuple[str, str], ...] = (
    ("--data-dir", "data_dir"),
    ("--database-url", "database_url"),
    ("--public-url", "public_url"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfsd ssh", description="lfsd's OpenSSH integration (docs/ssh.md)")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="AuthorizedKeysCommand: %%u %%t %%k")
    keys.add_argument("user")
    keys.add_argument("key_type")
    keys.add_argument("key")
    keys.add_argument("--ssh-command", default=None, help="the program the forced command runs [env LFSD_SSH_COMMAND]")
    keys.add_argument("--ssh-user", default=None, help="the SSH login name served [env LFSD_SSH_USER; default git]")
    shell = commands.add_parser("shell", help="the forced command: serves SSH_ORIGINAL_COMMAND")
    shell.add_argument("--key", type=int, required=True, help="the id of the SSH key that logged in")
    for sub in (keys, shell):
        for flag, _ in _PASSED:
            sub.add_argument(flag, default=None)
    return parser


def _settings(options: argparse.Namespace) -> Settings:
    given: dict[str, Any] = {field: getattr(options, field) for _, field in _PASSED}
    for field in ("ssh_command", "ssh_user"):
        given[field] = getattr(options, field, None)
    return Settings.parse({key: value for key, value in given.items() if value is not None})


def _open_database(settings: Settings) -> Database:
    # Not lfsd.resources: the object store and password hashing would double the start-up.
    from lfsd.database_settings import open_database

    return open_database(settings)


def forced_command(settings: Settings, key_id: int) -> str:
    """The ``ssh shell`` command line for ``key_id``, with the settings sshd will not pass in its environment."""
    # -P: sshd starts it in the user's home directory, which must not be on the import path.
    program = settings.ssh_command or f"{shlex.quote(sys.executable)} -P -m lfsd"
    words = [program, "ssh", "shell", "--key", str(key_id), "--data-dir", shlex.quote(str(settings.data_dir.resolve()))]
    if settings.database_url is not None:
        words += ["--database-url", shlex.quote(settings.database_url)]
    if settings.public_url is not None:
        words += ["--public-url", shlex.quote(settings.public_url)]
    line = " ".join(words)
    # authorized_keys quotes the command in "…"; a value that needs escaping there is refused rather than guessed.
    if '"' in line or "\\" in line or not line.isprintable():
        raise ValueError('the forced command may not hold ", \\ or control characters')
    return line


async def authorized_keys_line(settings: Settings, user: str, key_type: str, encoded: str) -> str | None:
    """The authorized_keys line for a known key of an enabled user logging in as ``ssh_user``, else None."""
    if user != settings.ssh_user:
        return None
    key = parse_offered_key(key_type, encoded)
    if key is None:
        return None
    db = _open_database(settings)
    try:
        key_id = await SqlSshKeys(db).login_key(key)
    finally:
        await db.dispose()
    if key_id is None:
        return None
    return f'restrict,command="{forced_command(settings, key_id)}" {key.openssh}'


def _keys(options: argparse.Namespace) -> int:
    """Prints the line, or nothing; exit 0 either way: sshd reads "no line" as "not this key" and tries the next
    one the client offers, while a failure status would only be logged as an error for every unknown key."""
    line = asyncio.run(authorized_keys_line(_settings(options), options.user, options.key_type, options.key))
    if line is not None:
        sys.stdout.write(line + "\n")
    return 0


def _hook_env(settings: Settings) -> dict[str, str]:
    from lfsd.hook import hook_environment

    return hook_environment(settings)


def _transfer(settings: Settings) -> Transfer | None:
    """git-lfs-transfer, unless turned off (clients then fall back to git-lfs-authenticate); loaded only when asked
    for, since authenticate and the Git services do not need the object store."""
    if not settings.ssh_transfer:
        return None

    async def run(identity: Identity, repo: RepoPath, operation: Operation, streams: SessionStreams | None) -> int:
        from lfsd.ssh_composition import shell_transfer

        return await shell_transfer(settings)(identity, repo, operation, streams)

    return run


async def _shell(settings: Settings, key_id: int) -> int:
    from lfsd.bootstrap import signing_key
    from lfsd.git.repositories import BareRepositories
    from lfsd.git.session import GitSession
    from lfsd.ssh.shell import ShellServices, serve_command

    db = _open_database(settings)
    try:
        services = ShellServices(
            keys=SqlSshKeys(db),
            repos=SqlRepoDirectory(db),
            signer=SshAuthSigner(signing_key(settings), settings.ssh_token_ttl),
            base_url=settings.public_url or f"http://{settings.listen}",
            clock=time.time,
            git=GitSession(BareRepositories(settings.effective_git_root), _hook_env(settings)),
            transfer=_transfer(settings),
        )

        def write(data: bytes) -> None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

        command = os.environ.get("SSH_ORIGINAL_COMMAND")
        return await serve_command(services, key_id, command, os.environ.get("GIT_PROTOCOL"), write)
    finally:
        await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    # Nothing is logged to the client: without a handler, Python's last resort would print lfsd's warnings (a
    # database URL, a traceback) on stderr, which the SSH client shows. Failures are the one line below.
    logging.getLogger("lfsd").addHandler(logging.NullHandler())
    options = _parser().parse_args(argv)
    try:
        settings = _settings(options)
        if options.command == "keys":
            return _keys(options)
        return asyncio.run(_shell(settings, options.key))
    except Refused as exc:
        sys.stderr.write(f"lfsd: {exc.message}\n")
        return exc.status
    except LfsError as exc:
        sys.stderr.write(f"lfsd: {exc.message}\n")
        return 1
    except SettingsError as exc:
        sys.stderr.write(f"lfsd: {exc.first}\n")
        return 1
    except Exception as exc:
        # One line for the client (or sshd's log), never a traceback.
        lines = str(exc).strip().splitlines()
        sys.stderr.write(f"lfsd: {options.command} failed: {lines[0] if lines else type(exc).__name__}\n")
        return 1
