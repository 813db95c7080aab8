"""The ``lfsd`` command line. Errors end with a one-line message and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import functools
import getpass
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack

import click

from lfsd.config import Settings, SettingsError
from lfsd.core.admin import Administration
from lfsd.core.audit import Actor, AuditQuery
from lfsd.core.auth import Permission, Repo
from lfsd.core.directory import GrantInfo, RepoInfo, TokenInfo, UserInfo
from lfsd.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    LfsError,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from lfsd.core.fsck import Fsck, FsckOptions, FsckReport
from lfsd.core.inventory import Removed, remove_objects
from lfsd.core.locks import Lock
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from lfsd.core.tokens import Scope
from lfsd.db.database import describe, utcnow
from lfsd.db.engine import DatabaseUrlError
from lfsd.db.inventory import SqlIndexInventory
from lfsd.db.metadata import Metadata, SchemaMismatch
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.git.repositories import BareRepositories
from lfsd.offload import in_thread
from lfsd.resources import open_database, open_metadata, open_store
from lfsd.storage.errors import StorageConfigError
from lfsd.storage.local import LocalStore

P = ParamSpec("P")
T = TypeVar("T")
STAGED_MARGIN_SECONDS = 3600  # `storage cleanup` keeps staged direct uploads this much longer than a link lives


class _Options(TypedDict, total=False):
    """The settings commands take as options, as click gives them: None when the option was not given."""

    listen: str | None
    public_url: str | None
    data_dir: Path | None
    database_url: str | None
    storage: str | None
    migrate: bool | None
    workers: str | None


def _settings(**options: Unpack[_Options]) -> Settings:
    """Command-line options override ``LFSD_*`` environment variables, which override defaults."""
    # An option not given must not override its variable, so it is left out: which options are left is known only at
    # run time, hence ``Settings.parse`` (tests/test_settings_env.py checks ``_Options`` against ``SettingsArgs``).
    try:
        return Settings.parse({key: value for key, value in options.items() if value is not None})
    except SettingsError as exc:
        raise click.ClickException(exc.first) from None


# Exit codes (docs/administration.md): 1 any other failure, 2 bad usage (click), 3 not found, 4 already exists or
# conflicting, 5 refused (not allowed, or a destructive command without --yes), 6 invalid value.
class NotFoundFailure(click.ClickException):
    exit_code = 3


class ConflictFailure(click.ClickException):
    exit_code = 4


class RefusedFailure(click.ClickException):
    exit_code = 5


class InvalidFailure(click.ClickException):
    exit_code = 6


def _failure(error: LfsError, message: str) -> click.ClickException:
    if isinstance(error, NotFound):
        return NotFoundFailure(message)
    if isinstance(error, Conflict):
        return ConflictFailure(message)
    if isinstance(error, Forbidden | Unauthorized):
        return RefusedFailure(message)
    if isinstance(error, BadRequest | Unprocessable):
        return InvalidFailure(message)
    return click.ClickException(message)


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
            raise _failure(exc, exc.message + detail) from None
        except (DatabaseUrlError, SchemaMismatch, StorageConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    return wrapper


def _admin(settings: Settings, call: Callable[[Administration, Actor], Awaitable[T]]) -> T:
    """Run one administration use case as the command line's actor (a server admin, audited as ``cli:USER``)."""

    async def action(meta: Metadata) -> T:
        admin = Administration(
            meta.users,
            meta.tokens,
            meta.repos,
            meta.locks,
            meta.audit,
            utcnow,
            token_max_days=settings.token_max_days,
            git=_git_repositories(settings),
        )
        return await call(admin, Actor.cli(getpass.getuser()))

    return _run(settings, action)


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


class LazyGroup(click.Group):
    """A group whose commands from other modules (``name: "module:attribute"``) are imported when run or listed, so
    that ``lfsd serve`` does not keep the garbage collector's, fsck's or the SSH commands' modules resident."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.pop(cmd_name, None)
        if target is not None:
            module, _, attribute = target.partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup, lazy={"ssh": "lfsd.ssh_cli:ssh", "gc": "lfsd.gc_command:gc", "quota": "lfsd.usage_cli:quota"}
)
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

    _admin(settings, lambda admin_, actor: admin_.add_user(actor, name, is_admin=admin, password=password))
    click.echo(f"user {name!r} added{' (admin)' if admin else ''}")


@main.group()
def token() -> None:
    """Manage personal access tokens."""


@token.command("create")
@click.argument("name")
@click.option("--label", default=None, help="what the token is for, shown by `token list`")
@click.option("--expires", "days", type=click.IntRange(min=1), default=None, help="days until it expires")
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "admin"]),
    default="write",
    show_default=True,
    help="admin: also the admin API (server admins only)",
)
@_storage_options
@_one_line_errors
def token_create(
    name: str, label: str | None, days: int | None, scope: str, data_dir: Path | None, database_url: str | None
) -> None:
    """Create a token for user NAME; it is printed alone on the last line and never shown again."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    info, secret = _admin(
        settings,
        lambda admin, actor: admin.create_token(actor, name, label=label, days=days, scope=Scope.parse(scope)),
    )
    expires = f", expires {info.expires_at.isoformat()}" if info.expires_at else ""
    click.echo(f"token {info.id} for {name!r} ({scope}{expires}; shown only now):")
    click.echo(secret)


@main.group(cls=LazyGroup, lazy={"usage": "lfsd.usage_cli:repo_usage"})
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

    _admin(settings, lambda admin, actor: admin.create_repo(actor, repo_path, public=public))
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

    _admin(settings, lambda admin, actor: admin.grant(actor, repo_path, user_name, level))
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

    _admin(settings, lambda admin, actor: admin.set_locking(actor, repo_path, state == "on"))
    click.echo(f"locking {state} for {repo_path}")


@main.group()
def locks() -> None:
    """Inspect and break file locks."""


@repo.command("remove-objects")
@click.argument("path")
@click.argument("oids", metavar="OID...", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="do not ask (required when stdin is not a terminal)")
@_storage_options
@_one_line_errors
def repo_remove_objects(
    path: str, oids: tuple[str, ...], yes: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Unlink objects OID... from repository PATH: it stops serving them at once. Other repositories holding them
    keep them, and the bytes stay in the store until garbage collection."""
    repo_path = _repo_path(path)
    parsed = [_oid(value) for value in oids]
    _confirm(yes, f"remove {len(set(parsed))} objects from {repo_path}")
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> Removed:
        return await remove_objects(SqlIndexInventory(meta.db), repo_path, parsed)

    removed = _run(settings, action)
    click.echo(
        f"unlinked {removed.unlinked} of {removed.requested} objects from {removed.repo} "
        f"({removed.requested - removed.unlinked} were not held); "
        "the bytes stay in the store until garbage collection"
    )


def _oid(value: str) -> Oid:
    try:
        return Oid.parse(value)
    except LfsError:
        raise click.BadParameter(f"{value!r} is not an object id (64 lowercase hex digits)") from None


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

    lock = _admin(settings, lambda admin, actor: admin.force_unlock(actor, repo_path, lock_id))
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
    """Remove what interrupted transfers left: multipart uploads and unverified direct uploads on S3, temp files on
    local disk."""
    from datetime import timedelta

    settings = _settings(storage=storage_url, data_dir=data_dir)
    age = timedelta(hours=older_than)

    async def run() -> str:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            if isinstance(opened.store, LocalStore):
                removed = await in_thread(opened.store.sweep_temp, max_age_seconds=age.total_seconds())
                return f"removed {removed} temp files"
            # A staged direct upload older than a link's lifetime can no longer be verified by anyone. The hour more
            # covers the skew between this clock and the store's (LastModified) and a verify still running.
            staged_age = timedelta(seconds=settings.link_ttl + STAGED_MARGIN_SECONDS)
            cleaned = await opened.store.cleanup(age, staged_older_than=staged_age)
            return (
                f"aborted {cleaned.multipart_uploads} multipart uploads older than {older_than:g} h; "
                f"removed {cleaned.staged_objects} unverified direct uploads older than "
                f"{staged_age.total_seconds():g} s"
            )

    click.echo(asyncio.run(run()))


def _fraction(value: str) -> float:
    try:
        percent = float(value.strip().removesuffix("%"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a percentage like 10%") from None
    if not 0 <= percent <= 100:
        raise click.BadParameter("the sample is between 0% and 100%")
    return percent / 100


@main.command()
@click.option("--rehash", is_flag=True, help="re-read every stored byte and check its SHA-256")
@click.option("--repair", is_flag=True, help="unlink damaged objects everywhere and quarantine their bytes")
@click.option(
    "--collect-unindexed",
    is_flag=True,
    help="record stored bodies the index has no row for (re-hashed first) so that lfsd gc removes them; "
    "never after restoring the database from a backup",
)
@click.option("--repo", "repo_path", default=None, help="check only the objects repository PATH holds")
@click.option("--json", "as_json", is_flag=True, help="print a JSON report (the default when stdout is not a terminal)")
@click.option("--sample", default=None, metavar="N%", help="with --rehash: re-hash only about N% of the objects")
@click.option("--max-rate", type=float, default=None, metavar="MB/s", help="with --rehash: read at most this fast")
@click.option("--storage", "storage_url", default=None, help="file:///PATH or s3://BUCKET[/PREFIX] [env LFSD_STORAGE]")
@_storage_options
@_one_line_errors
def fsck(
    rehash: bool,
    repair: bool,
    collect_unindexed: bool,
    repo_path: str | None,
    as_json: bool,
    sample: str | None,
    max_rate: float | None,
    storage_url: str | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Check the object index against the store, both ways; with --rehash, every byte too.

    Exit status: 0 all is well; 3 damaged objects (missing, wrong size, corrupt); 4 damaged objects, all repaired
    (the next push re-uploads them); 5 only bytes that no repository holds (garbage collection's job); 1 fsck could
    not run; 2 bad usage.
    """
    if (sample is not None or max_rate is not None) and not rehash:
        raise click.UsageError("--sample and --max-rate apply to --rehash")
    if collect_unindexed and repo_path is not None:
        raise click.UsageError("--collect-unindexed needs a full run: it cannot go with --repo")
    options = FsckOptions(
        rehash=rehash,
        repair=repair,
        collect_unindexed=collect_unindexed,
        repo=None if repo_path is None else _repo_path(repo_path),
        sample=1.0 if sample is None else _fraction(sample),
        max_rate=None if max_rate is None else max_rate * 1_000_000,
    )
    settings = _settings(storage=storage_url, data_dir=data_dir, database_url=database_url)
    json_out = as_json or not sys.stdout.isatty()

    async def action(meta: Metadata) -> FsckReport:
        async with AsyncExitStack() as resources:
            opened = await open_store(settings, resources)
            if options.repo is not None and await meta.repos.find(options.repo) is None:
                # Exit 1 ("could not run"), not the not-found code: fsck's 3 means damaged objects.
                raise click.ClickException(f"no repository {options.repo}")
            checker = Fsck(SqlIndexInventory(meta.db), opened.store)
            if json_out or not sys.stderr.isatty():
                return await checker.run(options)
            from lfsd.fsck_output import FsckProgress  # tqdm: only for fsck's progress bar

            with FsckProgress(await checker.count(options.repo)) as bar:
                return await checker.run(options, bar.update)

    report = _run(settings, action)
    if json_out:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        from lfsd.fsck_output import describe_report

        for line in describe_report(report):
            click.echo(line)
    sys.exit(int(report.exit_status))


# -- administration: users, tokens, repositories, grants and the audit log (issue 12) ---------------------------


def _json_option(fn: Callable[P, T]) -> Callable[P, T]:
    return click.option("--json", "as_json", is_flag=True, help="print one JSON document")(fn)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _confirm(yes: bool, question: str) -> None:
    """Destructive commands go ahead with --yes; otherwise they ask on a terminal and refuse without one."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedFailure(f"{question}: refused without --yes (stdin is not a terminal)")
    if not click.confirm(question, default=False):
        raise RefusedFailure("not confirmed")


def _user_json(user: UserInfo) -> dict[str, object]:
    return {
        "id": user.id,
        "name": user.name,
        "admin": user.is_admin,
        "disabled": user.disabled,
        "password": user.has_password,
        "created_at": _when(user.created_at),
        "last_active_at": _when(user.last_active_at),
    }


def _grant_json(grant: GrantInfo) -> dict[str, object]:
    return {"repo": str(grant.repo_path), "user": grant.user_name, "permission": grant.permission.name.lower()}


def _token_json(info: TokenInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "user": info.user_name,
        "label": info.label,
        "scopes": info.scope.names,
        "created_at": _when(info.created_at),
        "last_used_at": _when(info.last_used_at),
        "expires_at": _when(info.expires_at),
    }


def _repo_json(info: RepoInfo) -> dict[str, object]:
    return {
        "id": info.repo.id,
        "path": str(info.repo.path),
        "public": info.repo.is_public,
        "locking": info.repo.locking_enabled,
        "created_at": _when(info.created_at),
        "objects": info.objects,
        "bytes": info.bytes,
        "last_push": _when(info.last_push),
    }


@user.command("list")
@_json_option
@_storage_options
@_one_line_errors
def user_list(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List users with their last activity."""
    users = _admin(_settings(data_dir=data_dir, database_url=database_url), lambda a, actor: a.list_users(actor))
    if as_json:
        _print_json({"users": [_user_json(u) for u in users]})
        return
    rows = [
        [u.name, "admin" if u.is_admin else "", "disabled" if u.disabled else "", _when(u.last_active_at) or "never"]
        for u in users
    ]
    _table(rows, ["NAME", "ADMIN", "STATE", "LAST ACTIVE"])


@user.command("show")
@click.argument("name")
@_json_option
@_storage_options
@_one_line_errors
def user_show(name: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Show user NAME and their grants."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    found, grants = _admin(settings, lambda a, actor: a.show_user(actor, name))
    document = {**_user_json(found), "grants": [_grant_json(g) for g in grants]}
    if as_json:
        _print_json(document)
        return
    for key, value in document.items():
        if key != "grants":
            click.echo(f"{key}: {value}")
    for grant in grants:
        click.echo(f"grant: {grant.permission.name.lower()} {grant.repo_path}")


def _user_switch(command: str, disabled: bool) -> None:
    # The help text as an argument: the command is built by the decorator, so a __doc__ set afterwards is never read.
    described = (
        "Disable user NAME: their passwords, tokens and transfer links stop at once."
        if disabled
        else "Enable user NAME again."
    )

    @user.command(command, help=described)
    @click.argument("name")
    @_storage_options
    @_one_line_errors
    def switch(name: str, data_dir: Path | None, database_url: str | None) -> None:
        settings = _settings(data_dir=data_dir, database_url=database_url)
        _admin(settings, lambda a, actor: a.set_disabled(actor, name, disabled))
        click.echo(f"user {name!r} {command}d")


_user_switch("disable", True)
_user_switch("enable", False)


@user.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="do not ask")
@_storage_options
@_one_line_errors
def user_delete(name: str, yes: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Delete user NAME: their tokens and grants go; their locks stay, owned by 'NAME (deleted #ID)'."""
    _confirm(yes, f"delete user {name!r}")
    _admin(_settings(data_dir=data_dir, database_url=database_url), lambda a, actor: a.delete_user(actor, name))
    click.echo(f"user {name!r} deleted")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True, help="required: read it from the first line of stdin")
@_storage_options
@_one_line_errors
def user_passwd(name: str, password_stdin: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Set user NAME's password (an empty line removes it: tokens only)."""
    password = sys.stdin.readline().rstrip("\r\n") or None
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.set_password(actor, name, password))
    click.echo(f"password of {name!r} {'set' if password else 'removed'}")


@user.command("admin")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
@_storage_options
@_one_line_errors
def user_admin(name: str, state: str, data_dir: Path | None, database_url: str | None) -> None:
    """Make user NAME a server admin, or not."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.set_admin(actor, name, state == "on"))
    click.echo(f"user {name!r} admin {state}")


@token.command("list")
@click.argument("name")
@_json_option
@_storage_options
@_one_line_errors
def token_list(name: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List user NAME's active tokens (never their secrets)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    listed = _admin(settings, lambda a, actor: a.list_tokens(actor, name))
    if as_json:
        _print_json({"tokens": [_token_json(t) for t in listed]})
        return
    rows = [
        [
            str(t.id),
            t.label or "",
            ",".join(t.scope.names),
            _when(t.created_at) or "",
            _when(t.last_used_at) or "never",
            _when(t.expires_at) or "never",
        ]
        for t in listed
    ]
    _table(rows, ["ID", "LABEL", "SCOPES", "CREATED", "LAST USED", "EXPIRES"])


@token.command("revoke")
@click.argument("token_id", metavar="[ID]", type=int, required=False)
@click.option("--user", "user_name", default=None, help="with --all: revoke every token of this user")
@click.option("--all", "every", is_flag=True, help="all tokens of --user")
@_storage_options
@_one_line_errors
def token_revoke(
    token_id: int | None, user_name: str | None, every: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Revoke token ID, or all of a user's tokens (--user NAME --all). It answers 401 at once."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    if every and user_name is not None and token_id is None:
        count = _admin(settings, lambda a, actor: a.revoke_all_tokens(actor, user_name))
        click.echo(f"revoked {count} tokens of {user_name!r}")
        return
    if token_id is None or every or user_name is not None:
        raise click.UsageError("give a token ID, or --user NAME --all")
    info = _admin(settings, lambda a, actor: a.revoke_token(actor, token_id))
    click.echo(f"token {token_id} of {info.user_name!r} revoked")


@repo.command("list")
@_json_option
@_storage_options
@_one_line_errors
def repo_list(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List repositories with their objects, stored bytes and last push."""
    listed = _admin(_settings(data_dir=data_dir, database_url=database_url), lambda a, actor: a.list_repos(actor))
    if as_json:
        _print_json({"repos": [_repo_json(r) for r in listed]})
        return
    rows = [
        [
            str(r.repo.path),
            "public" if r.repo.is_public else "",
            str(r.objects),
            str(r.bytes),
            _when(r.last_push) or "never",
        ]
        for r in listed
    ]
    _table(rows, ["PATH", "PUBLIC", "OBJECTS", "BYTES", "LAST PUSH"])


@repo.command("show")
@click.argument("path")
@_json_option
@_storage_options
@_one_line_errors
def repo_show(path: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Show repository PATH and its grants."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    info, grants = _admin(settings, lambda a, actor: a.show_repo(actor, repo_path))
    document = {**_repo_json(info), "grants": [_grant_json(g) for g in grants]}
    if as_json:
        _print_json(document)
        return
    for key, value in document.items():
        if key != "grants":
            click.echo(f"{key}: {value}")
    for grant in grants:
        click.echo(f"grant: {grant.user_name} {grant.permission.name.lower()}")


@repo.command("rename")
@click.argument("old")
@click.argument("new")
@_storage_options
@_one_line_errors
def repo_rename(old: str, new: str, data_dir: Path | None, database_url: str | None) -> None:
    """Rename repository OLD to NEW: objects, locks and grants follow; OLD answers 404 afterwards."""
    old_path, new_path = _repo_path(old), _repo_path(new)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.rename_repo(actor, old_path, new_path))
    click.echo(f"repository {old_path} renamed to {new_path}; update the clients' remotes")


@repo.command("delete")
@click.argument("path")
@click.option("--yes", is_flag=True, help="do not ask")
@_storage_options
@_one_line_errors
def repo_delete(path: str, yes: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Delete repository PATH with its grants, locks and links to objects (the bytes stay for garbage collection)."""
    repo_path = _repo_path(path)
    _confirm(yes, f"delete repository {repo_path}")
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.delete_repo(actor, repo_path))
    click.echo(f"repository {repo_path} deleted")


@repo.command("public")
@click.argument("path")
@click.argument("state", type=click.Choice(["on", "off"]))
@_storage_options
@_one_line_errors
def repo_public(path: str, state: str, data_dir: Path | None, database_url: str | None) -> None:
    """Allow anonymous downloads of repository PATH (on), or not (off)."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.set_public(actor, repo_path, state == "on"))
    click.echo(f"public {state} for {repo_path}")


@repo.command("grants")
@click.argument("path")
@_json_option
@_storage_options
@_one_line_errors
def repo_grants(path: str, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List who may do what with repository PATH."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    listed = _admin(settings, lambda a, actor: a.grants(actor, repo_path))
    if as_json:
        _print_json({"grants": [_grant_json(g) for g in listed]})
        return
    _table([[g.user_name, g.permission.name.lower()] for g in listed], ["USER", "PERMISSION"])


@repo.command("revoke")
@click.argument("path")
@click.argument("user_name", metavar="USER")
@_storage_options
@_one_line_errors
def repo_revoke(path: str, user_name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Remove USER's grant on repository PATH (takes effect at the next request)."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _admin(settings, lambda a, actor: a.revoke(actor, repo_path, user_name))
    click.echo(f"{user_name} no longer has a grant on {repo_path}")


@main.group("audit", invoke_without_command=True)
@_json_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--actor", default=None, help="only this actor (a user name, or cli:OSUSER)")
@click.option("--action", default=None, help="only this action (e.g. token.revoke) or group (e.g. token)")
@click.option("--since", type=click.DateTime(), default=None, help="only from this time on (UTC)")
@_storage_options
@_one_line_errors
@click.pass_context
def audit_list(
    ctx: click.Context,
    as_json: bool,
    limit: int,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """The audit log, newest first (`lfsd audit prune` deletes old entries)."""
    if ctx.invoked_subcommand is not None:
        return
    query = AuditQuery(limit=limit, actor=actor, action=action, since=since.replace(tzinfo=UTC) if since else None)
    entries = _admin(_settings(data_dir=data_dir, database_url=database_url), lambda a, who: a.audit(who, query))
    if as_json:
        _print_json(
            {
                "entries": [
                    {
                        "id": e.id,
                        "at": _when(e.at),
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "address": e.address,
                        "outcome": str(e.outcome),
                        "details": dict(e.details),
                    }
                    for e in entries
                ]
            }
        )
        return
    rows = [
        [_when(e.at) or "", e.actor, e.action, e.target, str(e.outcome), json.dumps(dict(e.details), sort_keys=True)]
        for e in entries
    ]
    _table(rows, ["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAILS"])


@audit_list.command("prune")
@click.option("--older-than", "days", type=click.IntRange(1, 36500), required=True, metavar="DAYS")
@click.option("--yes", is_flag=True, help="do not ask (required when stdin is not a terminal)")
@_json_option
@_storage_options
@_one_line_errors
def audit_prune(days: int, yes: bool, as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Delete audit entries older than DAYS days (the prune itself is recorded)."""
    _confirm(yes, f"delete audit entries older than {days} days")
    settings = _settings(data_dir=data_dir, database_url=database_url)
    pruned = _admin(settings, lambda a, actor: a.prune_audit(actor, days))
    if as_json:
        _print_json({"pruned": pruned, "older_than_days": days})
    else:
        click.echo(f"pruned {pruned} audit entries older than {days} days")


# Git hosting (docs/git-hosting.md): the bare repositories beside the LFS objects, and the hook git runs on push.


def _git_repositories(settings: Settings) -> BareRepositories:
    return BareRepositories(settings.effective_git_root)


@repo.command("enforce-locks")
@click.argument("path")
@click.argument("state", type=click.Choice(["on", "off"]))
@_storage_options
@_one_line_errors
def repo_enforce_locks(path: str, state: str, data_dir: Path | None, database_url: str | None) -> None:
    """Refuse (on, the default) or allow (off) Git pushes that change files other users have locked."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        await _require_repo(meta, repo_path)
        await in_thread(_git_repositories(settings).set_enforce_locks, repo_path, state == "on")

    _run(settings, action)
    click.echo(f"lock enforcement on push {state} for {repo_path}")


@repo.command("require-pointers")
@click.argument("path")
@click.argument("state", type=click.Choice(["on", "off"]))
@_storage_options
@_one_line_errors
def repo_require_pointers(path: str, state: str, data_dir: Path | None, database_url: str | None) -> None:
    """Refuse (on) or allow (off, the default) Git pushes that bring, as plain Git files, files whose path
    .gitattributes gives to LFS."""
    repo_path = _repo_path(path)
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def action(meta: Metadata) -> None:
        await _require_repo(meta, repo_path)
        await in_thread(_git_repositories(settings).set_require_pointers, repo_path, state == "on")

    _run(settings, action)
    click.echo(f"pointer check on push {state} for {repo_path}")


@main.group(hidden=True)
def hook() -> None:
    """The Git hooks lfsd installs in its bare repositories; git runs them, people do not."""


@hook.command("pre-receive")
def hook_pre_receive() -> None:
    """Refuse a push whose new commits change a path another user has locked (or bring LFS files as plain ones)."""
    from lfsd.hook import pre_receive

    sys.exit(pre_receive(sys.stdin, sys.stderr))


# SSH (docs/ssh.md), the garbage collector (docs/operations.md) and quotas (issue 14): commands in modules of their
# own, which build on this module's helpers; registered by name in ``main`` and ``repo`` above (``LazyGroup``).
