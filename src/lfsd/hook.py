"""``lfsd hook pre-receive``: the hook lfsd installs in each bare repository, run by ``git receive-pack``.

lfsd sets the pusher (``LFSD_PUSH_*``) and the database (``LFSD_DATA_DIR``, ``LFSD_DATABASE_URL``) in the
environment of receive-pack, which passes it on. A push is refused when its new commits change a path another user
has locked, and (when the repository asks for it) when it brings as plain blobs files that ``.gitattributes`` gives
to LFS. Whatever fails here refuses the push: a lock must not be bypassed by a database that is down.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from lfsd.config import Settings
from lfsd.core.git import Pusher, rejection_message
from lfsd.core.locks import Lock
from lfsd.core.push_locks import PushLockCheck
from lfsd.db.locks import SqlLockRepository
from lfsd.git.changes import RefUpdate, changed_paths, parse_updates
from lfsd.git.pointers import PlainFile, plain_lfs_files
from lfsd.git.repositories import enforces_locks, requires_pointers
from lfsd.resources import open_database


def hook_environment(settings: Settings) -> dict[str, str]:
    """What this hook (``python -m lfsd hook pre-receive``) needs to open the server's database, whichever way the
    server was given it (options or environment): set in the environment of every receive-pack lfsd runs."""
    env = {
        "LFSD_HOOK_PYTHON": sys.executable,
        "LFSD_DATA_DIR": str(settings.data_dir.resolve()),
        "LFSD_DATABASE_URL": settings.effective_database_url,
    }
    if settings.database_password is not None:
        env["LFSD_DATABASE_PASSWORD"] = settings.database_password.get_secret_value()
    return env


def pusher_from(env: Mapping[str, str]) -> Pusher | None:
    try:
        return Pusher(int(env["LFSD_PUSH_REPO_ID"]), int(env["LFSD_PUSH_USER_ID"]), env["LFSD_PUSH_USER"])
    except (KeyError, ValueError):
        return None


def pre_receive(stdin: TextIO, stderr: TextIO) -> int:
    """The hook's exit status: 0 accepts the push, anything else refuses it (git tells the client why)."""
    git_dir = Path(os.environ.get("GIT_DIR", "."))
    try:
        updates = parse_updates(stdin.read())
        plain = plain_lfs_files([(u.new, u.ref) for u in updates]) if requires_pointers(git_dir) else []
    except Exception as exc:  # any failure refuses the push, with a line that says so
        stderr.write(f"lfsd: push refused: the pointer check failed ({type(exc).__name__}: {exc})\n")
        return 1
    if plain:
        stderr.write(plain_files_message(plain))
        return 1
    try:
        violations = _violations(updates) if enforces_locks(git_dir) else []
    except Exception as exc:  # any failure refuses the push, with a line that says so
        stderr.write(f"lfsd: push refused: the lock check failed ({type(exc).__name__}: {exc})\n")
        return 1
    if violations:
        stderr.write(rejection_message(violations))
        return 1
    return 0


def plain_files_message(plain: list[PlainFile]) -> str:
    """What the pusher reads: which files, and the command that rewrites them as pointers."""
    lines = [
        "lfsd: push refused: .gitattributes stores these files with Git LFS, but they were pushed as plain Git files:"
    ]
    lines += [f"* {file.path} ({file.ref})" for file in plain]
    lines.append(
        'Convert them with `git lfs migrate import --include="<path>"` (add --everything for older commits), '
        "then push again."
    )
    return "\n".join(lines) + "\n"


def _violations(updates: list[RefUpdate]) -> list[Lock]:
    pusher = pusher_from(os.environ)
    if pusher is None:
        raise LookupError("the pusher is unknown (push through lfsd's URL)")
    settings = Settings()

    async def check() -> list[Lock]:
        db = open_database(settings)
        try:
            return await PushLockCheck(SqlLockRepository(db)).violations(pusher, lambda: changed_paths(updates))
        finally:
            await db.dispose()

    return asyncio.run(check())
