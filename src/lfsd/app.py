"""The composition root: picks the concrete classes, wires them, and owns their lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shlex
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.errors import Conflict
from lfsd.core.lock_service import LockService
from lfsd.core.locks import CursorCodec
from lfsd.core.login import PasswordLogin
from lfsd.core.ports import DirectTransfers, ObjectStore
from lfsd.core.service import LfsService
from lfsd.core.signing import LinkSigner
from lfsd.core.throttle import FailureCounter, LoginThrottle, ThrottleLimits
from lfsd.db.database import Database
from lfsd.db.engine import PoolOptions, create_engine, parse_url
from lfsd.db.locks import SqlLockRepository
from lfsd.db.objects import SqlObjectIndex
from lfsd.db.repos import SqlRepoDirectory
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.db.users import SqlUserDirectory
from lfsd.http.drain import close_while_draining, drain_middleware
from lfsd.http.errors import error_middleware
from lfsd.http.health import add_health_routes
from lfsd.http.inflight import InFlight
from lfsd.http.keys import (
    ACCESS,
    HEALTH,
    INFLIGHT,
    LOCKS,
    METRICS,
    PROBES,
    SCRAPE,
    SERVICE,
    SETTINGS,
    SIGNER,
    Probe,
)
from lfsd.http.limits import limits_middleware
from lfsd.http.routes import add_routes
from lfsd.http.state import Health
from lfsd.memory import MemoryReleaser
from lfsd.observability.metrics import Metrics
from lfsd.offload import in_thread
from lfsd.passwords import Argon2Passwords
from lfsd.state.memory import LruCache, MemoryFailureCounter
from lfsd.storage.buffers import BufferPool
from lfsd.storage.instrumented import InstrumentedStore
from lfsd.storage.local import LocalStore

log = logging.getLogger("lfsd")

STORE_WRAPPER: web.AppKey[Callable[[ObjectStore], ObjectStore]] = web.AppKey("store_wrapper")

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


class SchemaMismatch(RuntimeError):
    """The database schema is not the one this lfsd needs (and may not be migrated here)."""


def pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        recycle_seconds=settings.database_pool_recycle,
        timeout_seconds=settings.database_pool_timeout,
        pre_ping=settings.database_pool_pre_ping,
        connect_timeout_seconds=settings.database_connect_timeout,
        statement_timeout_seconds=settings.database_timeout,
    )


def open_database(settings: Settings) -> Database:
    password = settings.database_password.get_secret_value() if settings.database_password else None
    url = parse_url(settings.effective_database_url, password)
    if url.get_backend_name() == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(create_engine(url, pool_options(settings)), timeout_seconds=settings.database_timeout)


@dataclass
class Metadata:
    """The SQL side, opened together: shared by the server and the CLI."""

    db: Database
    users: SqlUserDirectory
    repos: SqlRepoDirectory
    objects: SqlObjectIndex
    locks: SqlLockRepository
    passwords: Argon2Passwords

    @classmethod
    async def open(cls, settings: Settings, *, migrate: bool | None = None) -> Metadata:
        """Open the database and check its schema.

        ``migrate``: True upgrades, False refuses an old schema, None (the default) upgrades only SQLite, the
        embedded database; MySQL and PostgreSQL are upgraded by ``lfsd migrate`` or ``serve --migrate``.
        """
        db = open_database(settings)
        try:
            await _ensure_schema(db, migrate if migrate is not None else settings.migrate or db.dialect == "sqlite")
        except BaseException:
            await db.dispose()
            raise
        passwords = Argon2Passwords(threads=settings.password_threads, queue=settings.password_queue)
        return cls(
            db,
            SqlUserDirectory(db, passwords),
            SqlRepoDirectory(db),
            SqlObjectIndex(db),
            SqlLockRepository(db),
            passwords,
        )

    async def close(self) -> None:
        await self.db.dispose()
        self.passwords.close()


async def _ensure_schema(db: Database, migrate: bool) -> None:
    revision = await schema_revision(db)
    if revision == SCHEMA_HEAD:
        return
    if revision is not None and revision > SCHEMA_HEAD:  # revisions are zero-padded sequence numbers
        raise SchemaMismatch(
            f"the database schema ({revision}) is newer than this lfsd's ({SCHEMA_HEAD}); upgrade lfsd"
        )
    if not migrate:
        raise SchemaMismatch(
            f"the database schema is at {revision or 'nothing'}, lfsd needs {SCHEMA_HEAD}: "
            "run `lfsd migrate` or start with `lfsd serve --migrate`"
        )
    from lfsd.db.migrate import upgrade  # Alembic is loaded only when there is something to do

    await upgrade(db)


StoreWrapper = Callable[[ObjectStore], ObjectStore]


def build_app(settings: Settings, *, wrap_store: StoreWrapper | None = None) -> web.Application:
    """The application. ``wrap_store`` stacks one more wrapper on the object store (fault injection in tests)."""
    app = web.Application(
        # The drain's 503 is rendered by error_middleware, so it sits inside it.
        middlewares=[error_middleware, drain_middleware, limits_middleware],
        client_max_size=settings.batch_max_bytes,
    )
    app.on_response_prepare.append(close_while_draining)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[HEALTH] = Health()
    app[STORE_WRAPPER] = wrap_store or (lambda store: store)
    app.cleanup_ctx.append(_lifespan)
    add_routes(app)
    add_health_routes(app)
    return app


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=settings.io_threads, thread_name_prefix="lfsd-io")
    loop.set_default_executor(executor)
    meta = await Metadata.open(settings)
    resources = AsyncExitStack()
    try:
        metrics = app[METRICS]
        backend, inner, direct = await _open_store(settings, resources)
        # Outermost wrapper: the timings include everything the store does (and any injected fault).
        store = InstrumentedStore(app[STORE_WRAPPER](inner), backend, metrics)
        metrics.declare_storage(backend)
        key = signing_key(settings)
        signer = LinkSigner(key, settings.link_ttl)
        app[SIGNER] = signer
        app[ACCESS] = _open_access(settings, meta, resources)
        app[SERVICE] = LfsService(meta.objects, store, signer, time.time, direct)
        app[LOCKS] = LockService(
            meta.locks,
            CursorCodec(key),
            default_limit=settings.locks_default_limit,
            max_limit=settings.locks_max_limit,
        )
        inflight = InFlight(MemoryReleaser(), metrics.transfers_in_flight)
        app[INFLIGHT] = inflight
        metrics.watch_pool(meta.db.pool_stats)
        probes: dict[str, Probe] = {"database": meta.db.ping, "storage": store.check}
        app[PROBES] = probes

        async def scrape() -> None:
            metrics.locks_held.set(await meta.locks.count())

        app[SCRAPE] = scrape
        await _first_start(meta, settings)
        app[HEALTH].started = True
        try:
            yield
        finally:
            app[HEALTH].started = False
            await inflight.close()
    finally:
        await resources.aclose()
        await meta.close()
        # Let queued work finish (aiohttp closes sent files on this executor without awaiting it).
        executor.shutdown(wait=True)


def _open_access(settings: Settings, meta: Metadata, resources: AsyncExitStack) -> AccessControl:
    """Access control with its login throttle (counters in Redis when configured, so replicas share them) and
    its caches (in process)."""
    counter: FailureCounter
    if settings.redis_url is not None:
        # Loaded only when configured: the Redis client adds to the resident size of every other deployment.
        from redis.asyncio import Redis

        from lfsd.state.redis_counter import RedisFailureCounter

        client = Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        resources.push_async_callback(client.aclose)
        counter = RedisFailureCounter(client, settings.redis_key_prefix)
    else:
        counter = MemoryFailureCounter()
    limits = ThrottleLimits(
        window_seconds=settings.login_failure_window,
        per_user_address=settings.login_failures_per_user_address,
        per_address=settings.login_failures_per_address,
        per_user=settings.login_failures_per_user,
        trusted_seconds=settings.login_trusted_address_ttl,
    )
    # The cache lives only in this process, so its key need not outlive it nor be shared: a fresh random one.
    logins = PasswordLogin(
        meta.users,
        meta.passwords,
        LoginThrottle(counter, limits),
        LruCache(settings.credential_cache_size, settings.credential_cache_ttl),
        secrets.token_bytes(32),
    )
    # One standing per (repository, user, token) in use within a few seconds: 10,000 is far above a busy server's.
    return AccessControl(meta.users, meta.repos, logins, LruCache(10_000, settings.link_standing_ttl))


async def _open_store(settings: Settings, resources: AsyncExitStack) -> tuple[str, ObjectStore, DirectTransfers | None]:
    """The configured object store, its client (if any) registered for closing with the lifespan."""
    if settings.storage is not None and settings.storage.startswith("s3://"):
        # Loaded only for S3: aiobotocore and botocore add tens of MiB to the resident size.
        from lfsd.storage.s3 import S3DirectTransfers, S3Location, S3Store
        from lfsd.storage.s3_client import s3_client

        location = S3Location.parse(settings.storage)
        client = await resources.enter_async_context(
            s3_client(
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                path_style=settings.s3_path_style,
                max_connections=max(10, settings.s3_parts_in_flight * 8),
            )
        )
        ring = (settings.s3_parts_in_flight + 1) * settings.s3_part_size
        s3 = S3Store(
            client,
            location,
            part_size=settings.s3_part_size,
            parts_in_flight=settings.s3_parts_in_flight,
            pool=BufferPool(settings.buffer_size, settings.transfer_memory, max_idle_bytes=ring),
        )
        await s3.verify_bucket()
        direct = S3DirectTransfers(s3, trust_store_checksum=settings.s3_trust_checksum) if settings.s3_direct else None
        return "s3", s3, direct
    local = LocalStore(
        settings.local_storage_root,
        BufferPool(settings.buffer_size, settings.transfer_memory),
        fsync=settings.fsync,
        direct_io=settings.direct_io,
    )
    await asyncio.to_thread(local.prepare)
    return "local", local, None


ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


async def _first_start(meta: Metadata, settings: Settings) -> None:
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
