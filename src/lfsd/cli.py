"""The ``lfsd`` command line. Errors end with a one-line message and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import ValidationError

from lfsd.config import Settings
from lfsd.core.auth import Permission, Repo
from lfsd.core.errors import LfsError, NotFound, ServiceUnavailable
from lfsd.core.locks import Lock
from lfsd.core.repo import RepoPath
from lfsd.db.database import describe
from lfsd.db.engine import DatabaseUrlError
from lfsd.db.metadata import Metadata, SchemaMismatch
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.offload import in_thread
from lfsd.resources import open_database, open_metadata, open_store
from lfsd.storage.errors import StorageConfigError
from lfsd.storage.local import LocalStore

P = ParamSpec("P")
T = TypeVar("T")


def _settings(**options: Any) -> Settings:
    """Command-line options override ``LFSD_*`` environment variables, which override defaults."""
    given = {key: value for key, value in options.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise click.ClickException(f"invalid setting {field}: {first['msg']}") from None


def _one_line_errors(fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except LfsError as exc:
            cause = exc.__cause__
            detail = f" ({describe(cause)})" if isinstance(exc, ServiceUnavailable) and cause is not None else ""
            raise click.ClickException(exc.message + detail) from None
        except (DatabaseUrlError, SchemaMismatch, StorageConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    return wrapper


def _run(settings: Settings, action: Callable[[Metadata], Awaitable[T]], *, migrate: bool | None = None) -> T:
    async def main() -> T:
        meta = await open_metadata(settings, migrate=migrate)
        try:
            return await action(meta)
        finally:
            await meta.close()

    return asyncio.run(main())


def _storage_options(fn: Callable[P, T]) -> Callable[P, T]:
    fn = click.option(
        "--database-url", default=None, help="SQLAlchemy URL [env LFSD_DATABASE_URL; default: SQLite in data dir]"
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="data directory [env LFSD_DATA_DIR; default ./lfsd-data]",
    )(fn)


def _repo_path(value: str) -> RepoPath:
    try:
        return RepoPath.parse(value)
    except LfsError:
        raise click.BadParameter(f"{value!r} is not a repository path like OWNER/NAME") from None


@click.group()
@click.version_option(package_name="lfsd")
def main() -> None:
    """lfsd: a Git LFS server."""
    # Commands report database failures in their one-line error; the server logs them (see server.serve).
    logging.getLogger("lfsd.db").setLevel(logging.ERROR)


@main.command()
@click.option("--listen", default=None, help="HOST:PORT [env LFSD_LISTEN; default 127.0.0.1:8080]")
@click.option("--public-url", default=None, help="external base URL [env LFSD_PUBLIC_URL]")
@click.option(
    "--migrate", "migrate_schema", is_flag=True, default=None, help="apply pending migrations first [env LFSD_MIGRATE]"
)
@click.option(
    "--workers", default=None, help="N server processes on one port, or auto (one per core) [env LFSD_WORKERS]"
)
@_storage_options
@_one_line_errors
def serve(
    listen: str | None,
    public_url: str | None,
    migrate_schema: bool | None,
    workers: str | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Run the server. SQLite is migrated on start; MySQL and PostgreSQL need --migrate or `lfsd migrate`."""
    from lfsd.server import serve as run_server

    settings = _settings(
        listen=listen,
        public_url=public_url,
        data_dir=data_dir,
        database_url=database_url,
        migrate=migrate_schema,
        workers=workers,
    )
    # The server opens the database once, at start, and makes the schema step there (migrating in a child
    # process when allowed); a bad database or schema ends the start with a one-line error.
    run_server(settings)


def _current_revision(settings: Settings) -> str | None:
    async def read() -> str | None:
        db = open_database(settings)
        try:
            return await schema_revision(db)
        finally:
            await db.dispose()

    return asyncio.run(read())


@main.command()
@click.option("--check", is_flag=True, help="only check: exit 1 when the schema is behind")
@_storage_options
@_one_line_errors
def migrate(check: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Apply pending database migrations (under the database's own lock)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    if check:
        revision = _current_revision(settings)
        if revision != SCHEMA_HEAD:
            raise click.ClickException(f"database schema at {revision or 'nothing'}, lfsd needs {SCHEMA_HEAD}")
        click.echo(f"database schema at revision {revision} (current)")
        return

    async def action(meta: Metadata) -> str | None:
        return await schema_revision(meta.db)

    revision = _run(settings, action, migrate=True)
    click.echo(f"database schema at revision {revision} (head {SCHEMA_HEAD})")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="a server administrator")
@click.option("--password-stdin", is_flag=True, help="read a password from the first line of stdin")
@_storage_options
@_one_line_errors
def user_add(name: str, admin: bool, password_stdin: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Add a user (without a password unless --password-stdin; use tokens)."""
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("an empty password was given on stdin")
    if not name or len(name) > 100 or ":" in name or not name.isprintable():
        raise click.BadParameter("user names are 1-100 printable characters without ':'")
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        await meta.users.add(name, is_admin=admin, password=password)

    _run(settings, action)
    click.echo(f"user {name!r} added{' (admin)' if admin else ''}")


@main.group()
def token() -> None:
    """Manage personal access tokens."""


@token.command("create")
@click.argument("name")
@_storage_options
@_one_line_errors
def token_create(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Create a token for user NAME; it is printed alone on the last line and never shown again."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> str:
        return await meta.users.create_token(name)

    new = _run(settings, action)
    click.echo(f"token for {name!r} (shown only now):")
    click.echo(new)


@main.group()
def repo() -> None:
    """Manage repositories."""


@repo.command("create")
@click.argument("path")
@click.option("--public", is_flag=True, help="allow anonymous downloads")
@_storage_options
@_one_line_errors
def repo_create(path: str, public: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Create repository PATH (OWNER/NAME)."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        if await meta.repos.find(repo_path) is not None:
            raise click.ClickException(f"repository {repo_path} already exists")
        await meta.repos.create(repo_path, is_public=public)

    _run(settings, action)
    click.echo(f"repository {repo_path} created{' (public)' if public else ''}")


@repo.command("grant")
@click.argument("path")
@click.argument("user_name", metavar="USER")
@click.argument("permission", type=click.Choice(["read", "write", "admin"]))
@_storage_options
@_one_line_errors
def repo_grant(path: str, user_name: str, permission: str, data_dir: Path | None, database_url: str | None) -> None:
    """Give USER read, write or admin permission on repository PATH."""
    repo_path = _repo_path(path)
    level = Permission.parse(permission)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        found = await _require_repo(meta, repo_path)
        account = await meta.users.require(user_name)
        await meta.repos.set_grant(found, account.id, level)

    _run(settings, action)
    click.echo(f"{user_name} may now {permission} {repo_path}")


@repo.command("locking")
@click.argument("path")
@click.argument("state", type=click.Choice(["on", "off"]))
@_storage_options
@_one_line_errors
def repo_locking(path: str, state: str, data_dir: Path | None, database_url: str | None) -> None:
    """Turn the File Locking API on or off for repository PATH (off: clients get 404 and stop verifying)."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        await meta.repos.set_locking(await _require_repo(meta, repo_path), state == "on")

    _run(settings, action)
    click.echo(f"locking {state} for {repo_path}")


@main.group()
def locks() -> None:
    """Inspect and break file locks."""


@locks.command("list")
@click.argument("path")
@_storage_options
@_one_line_errors
def locks_list(path: str, data_dir: Path | None, database_url: str | None) -> None:
    """List the locks of repository PATH: id, path, owner, locked at."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> list[Lock]:
        found = await _require_repo(meta, repo_path)
        listed: list[Lock] = []
        after = 0
        while True:
            page, more = await meta.locks.page(found.id, after_id=after, limit=500)
            listed += page
            if not more:
                return listed
            after = page[-1].id

    for lock in _run(settings, action):
        click.echo(f"{lock.id}\t{lock.path}\t{lock.owner_name}\t{lock.locked_at.isoformat()}")


@locks.command("unlock")
@click.argument("path")
@click.argument("lock_id", metavar="ID", type=int)
@click.option("--force", is_flag=True, required=True, help="required: break the lock whoever owns it")
@_storage_options
@_one_line_errors
def locks_unlock(path: str, lock_id: int, force: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Break lock ID of repository PATH."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> Lock:
        found = await _require_repo(meta, repo_path)
        deleted = await meta.locks.delete(found.id, lock_id, None)
        if deleted is None:
            raise NotFound(f"no lock {lock_id} in {repo_path}")
        return deleted

    lock = _run(settings, action)
    click.echo(f"unlocked {lock.path} (was locked by {lock.owner_name})")


async def _require_repo(meta: Metadata, path: RepoPath) -> Repo:
    found = await meta.repos.find(path)
    if found is None:
        raise NotFound(f"no repository {path}")
    return found


@main.group()
def storage() -> None:
    """Maintain the object store."""


@storage.command("cleanup")
@click.option("--storage", "storage_url", default=None, help="file:///PATH or s3://BUCKET[/PREFIX] [env LFSD_STORAGE]")
@click.option("--older-than", type=float, default=24.0, show_default=True, help="hours")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="[env LFSD_DATA_DIR]")
@_one_line_errors
def storage_cleanup(storage_url: str | None, older_than: float, data_dir: Path | None) -> None:
    """Remove what crashed processes left: multipart uploads on S3, temp files on local disk."""
    from datetime import timedelta

    settings = _settings(storage=storage_url, data_dir=data_dir)
    age = timedelta(hours=older_than)

    async def run() -> str:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            if isinstance(opened.store, LocalStore):
                removed = await in_thread(opened.store.sweep_temp, max_age_seconds=age.total_seconds())
                return f"removed {removed} temp files"
            # A staged direct upload older than a link's lifetime can no longer be verified by anyone.
            cleaned = await opened.store.cleanup(age, staged_older_than=timedelta(seconds=settings.link_ttl))
            return (
                f"aborted {cleaned.multipart_uploads} multipart uploads older than {older_than:g} h; "
                f"removed {cleaned.staged_objects} unverified direct uploads older than {settings.link_ttl} s"
            )

    click.echo(asyncio.run(run()))
