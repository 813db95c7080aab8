"""The composition root: picks the concrete classes, wires them, and owns their lifespan."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from lfsd.bootstrap import first_start, signing_key
from lfsd.config import Settings
from lfsd.core.access import AccessControl
from lfsd.core.admin import Administration
from lfsd.core.external import ExternalLogin
from lfsd.core.lock_service import LockService
from lfsd.core.locks import CursorCodec
from lfsd.core.login import PasswordLogin
from lfsd.core.ports import ObjectStore, blocking_presence
from lfsd.core.service import LfsService
from lfsd.core.signing import LinkSigner
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.ssh_auth import SshAuthSigner, SshCredentials
from lfsd.core.throttle import FailureCounter, LoginThrottle, ThrottleLimits
from lfsd.core.usage import UsageService
from lfsd.db.database import utcnow
from lfsd.db.metadata import Metadata
from lfsd.db.ssh_keys import SqlSshKeys
from lfsd.git.process import GitProcesses
from lfsd.git.repositories import BareRepositories
from lfsd.hook import hook_environment
from lfsd.http.admin_api import add_admin_routes
from lfsd.http.admin_api.edge import ADMIN, SSH_KEYS, USAGE
from lfsd.http.drain import close_while_draining, drain_middleware
from lfsd.http.errors import error_middleware
from lfsd.http.health import add_health_routes
from lfsd.http.inflight import InFlight
from lfsd.http.keys import (
    ACCESS,
    GIT_REPOS,
    GIT_RPC,
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
from lfsd.resources import migrate_in_child, open_external, open_metadata, open_store
from lfsd.retention import DailyPrune
from lfsd.state.memory import LruCache, MemoryFailureCounter
from lfsd.storage.instrumented import InstrumentedStore

log = logging.getLogger("lfsd")

STORE_WRAPPER: web.AppKey[Callable[[ObjectStore], ObjectStore]] = web.AppKey("store_wrapper")

StoreWrapper = Callable[[ObjectStore], ObjectStore]


def build_app(
    settings: Settings, *, wrap_store: StoreWrapper | None = None, metrics_dir: Path | None = None
) -> web.Application:
    """The application. ``wrap_store`` stacks one more wrapper on the object store (fault injection in tests);
    ``metrics_dir``: a worker of several, whose metrics go to files there (``observability.metrics``)."""
    app = web.Application(
        # The drain's 503 is rendered by error_middleware, so it sits inside it.
        middlewares=[error_middleware, drain_middleware, limits_middleware],
        client_max_size=settings.batch_max_bytes,
    )
    app.on_response_prepare.append(close_while_draining)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(metrics_dir)
    app[HEALTH] = Health()
    app[STORE_WRAPPER] = wrap_store or (lambda store: store)
    app.cleanup_ctx.append(_lifespan)
    add_routes(app)
    add_health_routes(app)
    add_admin_routes(app)
    if settings.ui:
        from lfsd.ui_root import add_ui  # only then: a server without the UI never loads Jinja2

        add_ui(app)
    return app


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=settings.io_threads, thread_name_prefix="lfsd-io")
    loop.set_default_executor(executor)
    meta = await open_metadata(settings, migrator=migrate_in_child(settings))
    resources = AsyncExitStack()
    try:
        metrics = app[METRICS]
        opened = await open_store(settings, resources)
        # Outermost wrapper: the timings include everything the store does (and any injected fault).
        store = InstrumentedStore(app[STORE_WRAPPER](opened.store), opened.backend, metrics)
        metrics.declare_storage(opened.backend)
        key = await in_thread(signing_key, settings)
        signer = LinkSigner(key, settings.link_ttl)
        app[SIGNER] = signer
        external = await in_thread(open_external, settings, meta.users)
        app[ACCESS] = _open_access(settings, meta, resources, key, external)
        # A link re-checks, under its row locks, the bodies a garbage collector may have taken (docs/operations.md).
        meta.objects.check_bodies_with(store.present, blocking_presence(store))
        app[SERVICE] = LfsService(meta.objects, store, signer, time.time, opened.direct, quota=meta.usage)
        app[LOCKS] = LockService(
            meta.locks,
            CursorCodec(key),
            default_limit=settings.locks_default_limit,
            max_limit=settings.locks_max_limit,
            audit=meta.audit,
        )
        pool, db = opened.pool, meta.db

        async def free_idle_memory() -> None:
            pool.release_idle()
            await db.release_memory()

        inflight = InFlight(MemoryReleaser(), metrics.transfers_in_flight, before_trim=free_idle_memory)
        app[INFLIGHT] = inflight
        if settings.ssh_listen is not None:
            from lfsd.ssh.transfer import TransferCore  # asyncssh is loaded only when configured
            from lfsd.ssh_composition import channel_transfer
            from lfsd.ssh_embedded import open_embedded_ssh

            # The server's own use cases and pools; no presigned links: over SSH every byte goes through the session.
            core = TransferCore(
                service=LfsService(meta.objects, store, signer, time.time, None, quota=meta.usage),
                locks=app[LOCKS],
                access=app[ACCESS],
                idle_timeout=settings.ssh_idle_timeout,
                stall_timeout=settings.ssh_stall_timeout,
                max_object_size=settings.max_object_size,
                batch_max_objects=settings.batch_max_objects,
                metrics=metrics,
                slots=inflight,  # one per-user cap for HTTP and SSH transfers
                max_transfers_per_user=settings.max_transfers_per_user,
                transfer_queue_wait=settings.transfer_queue_wait,
            )
            await open_embedded_ssh(settings, meta, key, resources, metrics, channel_transfer(core))
        app[GIT_REPOS] = BareRepositories(settings.effective_git_root)
        app[GIT_RPC] = GitProcesses(_hook_env(settings))
        app[ADMIN] = Administration(
            meta.users,
            meta.tokens,
            meta.repos,
            meta.locks,
            meta.audit,
            utcnow,
            token_max_days=settings.token_max_days,
            git=app[GIT_REPOS],
        )
        app[USAGE] = UsageService(meta.usage, meta.audit, utcnow)
        app[SSH_KEYS] = SshKeyAdministration(meta.users, SqlSshKeys(meta.db), meta.audit, utcnow)
        metrics.watch_pool(meta.db.pool_stats)
        probes: dict[str, Probe] = {"database": meta.db.ping, "storage": store.check}
        app[PROBES] = probes
        if settings.ui:
            from lfsd.ui_root import open_ui

            open_ui(
                app,
                settings,
                meta,
                access=app[ACCESS],
                locks=app[LOCKS],
                git=app[GIT_REPOS],
                inflight=inflight,
                storage=opened.backend,
            )

        async def scrape() -> None:
            metrics.locks_held.set(await meta.locks.count())
            metrics.set_stored(*await meta.usage.totals())

        app[SCRAPE] = scrape
        await first_start(meta, settings)
        days = settings.audit_retention_days
        retention = DailyPrune(meta, days) if days is not None else None
        app[HEALTH].started = True
        try:
            yield
        finally:
            app[HEALTH].started = False
            if retention is not None:
                await retention.stop()
            await inflight.close()
    finally:
        await resources.aclose()
        await meta.close()
        # Let queued work finish (aiohttp closes sent files on this executor without awaiting it).
        executor.shutdown(wait=True)


def _open_access(
    settings: Settings, meta: Metadata, resources: AsyncExitStack, key: bytes, external: ExternalLogin | None = None
) -> AccessControl:
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
    ssh = SshCredentials(SshAuthSigner(key, settings.ssh_token_ttl), SqlSshKeys(meta.db), time.time)
    return AccessControl(meta.users, meta.repos, logins, LruCache(10_000, settings.link_standing_ttl), external, ssh)


def _hook_env(settings: Settings) -> dict[str, str]:
    """What the pre-receive hook needs to open this server's database (the SSH shell sets the same)."""
    return hook_environment(settings)
