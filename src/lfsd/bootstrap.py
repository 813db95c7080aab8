"""What a server does once, at its first start on a data directory or database: the link-signing key, and the
first administrator with a token that never reaches the logs. Blocking; called through ``offload.in_thread``
where it touches files."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from lfsd.config import Settings
from lfsd.core.errors import Conflict
from lfsd.offload import in_thread

if TYPE_CHECKING:  # the SSH shell reads the signing key without loading every table's adapter
    from lfsd.db.metadata import Metadata

SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


def signing_key(settings: Settings) -> bytes:
    """The configured key, or one generated once into the data dir (readable only by its owner).

    Processes starting together on one data dir agree on the key: it is written to a private temp file and
    hard-linked into place, so a reader never sees a partial key and only the first link wins.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        tmp = settings.data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


async def first_start(meta: Metadata, settings: Settings) -> None:
    """On an empty database, create the user ``admin`` with a token that never reaches the logs.

    stdout ends up in pod logs, so the token is either the configured ``initial_admin_token`` (a Kubernetes Secret)
    or a random one written once to ``data_dir/admin-token``, readable only by lfsd's user; only the path is printed.
    """
    if await meta.users.count() > 0:
        return
    try:
        await meta.users.add("admin", is_admin=True, password=None)
    except Conflict:
        return  # another process started at the same moment and made it
    if settings.initial_admin_token is not None:
        await meta.users.create_token("admin", settings.initial_admin_token.get_secret_value())
        print("lfsd: created user 'admin' with the token from LFSD_INITIAL_ADMIN_TOKEN.", flush=True)
        return
    path = (settings.data_dir / ADMIN_TOKEN_FILE).resolve()
    token = await meta.users.create_token("admin")
    try:
        await in_thread(_write_new_private_file, path, f"{token}\n")
    except OSError as exc:
        await meta.users.revoke_token(token)  # nobody could ever read it
        reason = "it exists already (left alone)" if isinstance(exc, FileExistsError) else exc.strerror
        print(
            f"lfsd: created user 'admin' without a token: cannot write {path}: {reason}.\n"
            "  Create one with `lfsd token create admin`, or set LFSD_INITIAL_ADMIN_TOKEN on an empty database.",
            flush=True,
        )
        return
    base = settings.public_url or f"http://{settings.listen}"
    scheme, _, rest = base.partition("://")
    print(
        f"lfsd: created user 'admin'; its token is in {path} (readable only by this user).\n"
        "  In a git repository, point LFS at repository OWNER/NAME on this server with:\n"
        f'    git config lfs.url "{scheme}://admin:$(cat {shlex.quote(str(path))})@{rest}/OWNER/NAME.git/info/lfs"\n'
        "  Keep the token somewhere safe and delete the file.",
        flush=True,
    )


def _write_new_private_file(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 and ``text``; never through a link, never over an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
