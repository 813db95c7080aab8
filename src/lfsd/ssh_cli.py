"""``lfsd ssh …``: users' SSH keys (``key add|list|remove``), and the two commands sshd runs (``keys``, ``shell``),
which live in ``lfsd.ssh_entry`` so that they start without the rest of the command line."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from lfsd import cli as base
from lfsd.core.audit import Actor
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.sshkeys import SshKeyInfo
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.db.ssh_keys import SqlSshKeys


@click.group()
def ssh() -> None:
    """SSH access: users' public keys, and the commands OpenSSH runs (docs/ssh.md)."""


@ssh.group()
def key() -> None:
    """Manage users' SSH public keys."""


def _keys(meta: Metadata) -> SshKeyAdministration:
    return SshKeyAdministration(meta.users, SqlSshKeys(meta.db), meta.audit, utcnow)


def _key_json(info: SshKeyInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "user": info.user_name,
        "type": info.key_type,
        "fingerprint": info.fingerprint,
        "label": info.label,
        "created_at": base._when(info.created_at),
        "last_used_at": base._when(info.last_used_at),
    }


@key.command("add")
@click.argument("user_name", metavar="USER")
@click.option("--label", default=None, help="what the key is for (default: the key's comment)")
@base._storage_options
@base._one_line_errors
def key_add(user_name: str, label: str | None, data_dir: Path | None, database_url: str | None) -> None:
    """Add the public key on standard input (one line of a .pub file) to USER."""
    text = sys.stdin.read(16384)
    settings = base._settings(data_dir=data_dir, database_url=database_url)
    actor = Actor.cli(getpass.getuser())

    async def action(meta: Metadata) -> SshKeyInfo:
        return await _keys(meta).add_key(actor, user_name, text, label=label)

    info = base._run(settings, action)
    click.echo(f"SSH key {info.id} added for {user_name!r}: {info.key_type} {info.fingerprint}")


@key.command("list")
@click.argument("user_name", metavar="USER")
@base._json_option
@base._storage_options
@base._one_line_errors
def key_list(user_name: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List USER's SSH keys: id, type, fingerprint, label, added, last used."""
    settings = base._settings(data_dir=data_dir, database_url=database_url)
    actor = Actor.cli(getpass.getuser())

    async def action(meta: Metadata) -> list[SshKeyInfo]:
        return await _keys(meta).list_keys(actor, user_name)

    found = base._run(settings, action)
    if as_json:
        base._print_json({"keys": [_key_json(info) for info in found]})
        return
    rows = [
        [
            str(info.id),
            info.key_type,
            info.fingerprint,
            info.label or "",
            base._when(info.created_at) or "",
            base._when(info.last_used_at) or "never",
        ]
        for info in found
    ]
    base._table(rows, ["ID", "TYPE", "FINGERPRINT", "LABEL", "ADDED", "LAST USED"])


@key.command("remove")
@click.argument("key_id", metavar="ID", type=int)
@base._storage_options
@base._one_line_errors
def key_remove(key_id: int, data_dir: Path | None, database_url: str | None) -> None:
    """Remove SSH key ID: it stops opening sessions at once."""
    settings = base._settings(data_dir=data_dir, database_url=database_url)
    actor = Actor.cli(getpass.getuser())

    async def action(meta: Metadata) -> SshKeyInfo:
        return await _keys(meta).remove_key(actor, key_id)

    info = base._run(settings, action)
    click.echo(f"SSH key {key_id} of {info.user_name!r} removed ({info.fingerprint})")


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@ssh.command("keys", context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def keys(args: tuple[str, ...]) -> None:
    """sshd's AuthorizedKeysCommand: `lfsd ssh keys [--data-dir D] %u %t %k` (docs/ssh.md)."""
    from lfsd.ssh_entry import main

    sys.exit(main(["keys", *args]))


@ssh.command("shell", context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def shell(args: tuple[str, ...]) -> None:
    """The forced command `lfsd ssh keys` names: serves SSH_ORIGINAL_COMMAND for one key."""
    from lfsd.ssh_entry import main

    sys.exit(main(["shell", *args]))
