"""The composition root: picks the concrete classes, wires them, and owns their lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aiohttp import web

from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.errors import Conflict
from lfsd.core.lock_service import LockService
from lfsd.core.locks import CursorCodec
from lfsd.core.ports import DirectTransfers, ObjectStore
from lfsd.core.service import LfsService
from lfsd.core.signing import LinkSigner
from lfsd.db.database import Database
from lfsd.db.engine import PoolOptions, create_engine, parse_url
from lfsd.db.locks import SqlLockRepository
from lfsd.db.objects import SqlObjectIndex
from lfsd.db.repos import SqlRepoDirectory
from lfsd.db.schema import SCHEMA_HEAD, schema_revision
from lfsd.db.users import SqlUserDirectory
from lfsd.http.drain import close_while_draining, drain_middleware
from lfsd.http.errors import error_middleware, limits_middleware
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
from lfsd.http.routes import add_routes
from lfsd.http.state import Health
from lfsd.memory import MemoryReleaser
from lfsd.observability.metrics import Metrics
from lfsd.passwords import Argon2Passwords
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
        return cls(
            db, SqlUserDirectory(db, Argon2Passwords()), SqlRepoDirectory(db), SqlObjectIndex(db), SqlLockRepository(db)
        )

    async def close(self) -> None:
        await self.db.dispose()


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
        app[ACCESS] = AccessControl(meta.users, meta.repos)
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
        s3 = S3Store(client, location, part_size=settings.s3_part_size, parts_in_flight=settings.s3_parts_in_flight)
        await s3.verify_bucket()
        return "s3", s3, S3DirectTransfers(s3) if settings.s3_direct else None
    local = LocalStore(
        settings.local_storage_root,
        BufferPool(settings.buffer_size, settings.transfer_memory),
        fsync=settings.fsync,
        direct_io=settings.direct_io,
    )
    await asyncio.to_thread(local.prepare)
    return "local", local, None


async def _first_start(meta: Metadata, settings: Settings) -> None:
    """On an empty database, create the ``admin`` user and print, once, how to use its token with git."""
    if await meta.users.count() > 0:
        return
    try:
        await meta.users.add("admin", is_admin=True, password=None)
    except Conflict:
        return  # another process started at the same moment and made it
    token = await meta.users.create_token("admin")
    base = settings.public_url or f"http://{settings.listen}"
    scheme, _, rest = base.partition("://")
    print(
        "lfsd: created user 'admin' with a new token; it is shown only now.\n"
        "  In a git repository, point LFS at repository OWNER/NAME on this server with:\n"
        f"    git config lfs.url {scheme}://admin:{token}@{rest}/OWNER/NAME.git/info/lfs",
        flush=True,
    )
