"""Opening what lfsd runs on, from the settings: the metadata database and the object store.

The server's lifespan and the CLI open them through these functions only, so both get the same pools, drivers,
buffer pool, S3 client and schema policy.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lfsd.config import Settings
from lfsd.core.external import ActingUsers, ExternalLogin
from lfsd.core.ports import DirectTransfers
from lfsd.database_settings import open_database as open_database  # re-exported: callers open it from here
from lfsd.db.database import Database
from lfsd.db.metadata import Metadata, Migrator, SchemaMismatch, ensure_schema, may_migrate, upgrade_in_process
from lfsd.offload import in_thread
from lfsd.passwords import Argon2Passwords, check_available
from lfsd.storage.buffers import BufferPool
from lfsd.storage.local import LocalStore

if TYPE_CHECKING:
    from lfsd.storage.s3 import S3Store


async def open_metadata(
    settings: Settings, *, migrate: bool | None = None, migrator: Migrator = upgrade_in_process
) -> Metadata:
    """Open the database once and make the one schema step on it.

    ``migrate``: True upgrades, False refuses an old schema, None follows ``settings.migrate`` and otherwise
    upgrades only SQLite. ``migrator`` does the upgrade (the server's runs it in a child process).
    """
    db = open_database(settings)
    try:
        requested = migrate if migrate is not None else (True if settings.migrate else None)
        await ensure_schema(db, allowed=may_migrate(db.dialect, requested), migrator=migrator)
    except BaseException:
        await db.dispose()
        raise
    check_available()  # argon2 itself loads on the first password; a missing one fails here, at start-up
    passwords = Argon2Passwords(threads=settings.password_threads, queue=settings.password_queue)
    return Metadata.over(db, passwords, default_quota=settings.quota_default_bytes)


def migrate_in_child(settings: Settings) -> Migrator:
    """A migrator that runs ``lfsd migrate`` in a child process, so the server never loads Alembic (~10 MiB)."""

    async def migrate(_db: Database) -> None:
        # -P: the working directory (in a container, the data volume) stays off the child's import path.
        command = [sys.executable, "-P", "-m", "lfsd", "migrate", "--data-dir", str(settings.data_dir)]
        if settings.database_url is not None:
            command += ["--database-url", settings.database_url]
        child = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await child.communicate()
        if child.returncode != 0:
            lines = errors.decode("utf-8", "replace").strip().splitlines() or ["migration failed"]
            raise SchemaMismatch(lines[-1].removeprefix("Error: "))

    return migrate


@dataclass(frozen=True)
class OpenedStore:
    backend: str  # "local" or "s3", the label of storage metrics
    store: LocalStore | S3Store
    direct: DirectTransfers | None
    pool: BufferPool  # the store's transfer buffers (idle ones are unmapped when the server goes quiet)


async def open_store(settings: Settings, resources: AsyncExitStack) -> OpenedStore:
    """The configured object store; its client (if any) is closed with ``resources``."""
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
        # One upload's ring of parts stays idle between uploads, so back-to-back uploads reuse it.
        ring = (settings.s3_parts_in_flight + 1) * settings.s3_part_size
        pool = BufferPool(settings.buffer_size, settings.transfer_memory, max_idle_bytes=ring)
        s3 = S3Store(
            client,
            location,
            part_size=settings.s3_part_size,
            parts_in_flight=settings.s3_parts_in_flight,
            pool=pool,
        )
        await s3.verify_bucket()
        direct = S3DirectTransfers(s3, trust_store_checksum=settings.s3_trust_checksum) if settings.s3_direct else None
        return OpenedStore("s3", s3, direct, pool)
    pool = BufferPool(settings.buffer_size, settings.transfer_memory)
    local = LocalStore(settings.local_storage_root, pool, fsync=settings.fsync, direct_io=settings.direct_io)
    await in_thread(local.prepare)
    return OpenedStore("local", local, None, pool)


def open_external(settings: Settings, users: ActingUsers) -> ExternalLogin | None:
    """JWT Bearer authentication, when an issuer is configured: keys and rules are read once, here (blocking: run it
    in a thread). A half-made configuration is refused with a message naming the missing setting."""
    if settings.oidc_issuer is None:
        return None
    # Loaded only when configured: PyJWT and cryptography's key types are not needed otherwise.
    from lfsd.oidc.rules import load_rules
    from lfsd.oidc.verifier import JwtVerifier, load_jwks, load_pem_key, parse_algorithms

    if settings.oidc_audience is None:
        raise ValueError("oidc_issuer is set: oidc_audience is required too")
    if (settings.oidc_public_key is None) == (settings.oidc_jwks_file is None):
        raise ValueError("oidc_issuer is set: give exactly one of oidc_public_key and oidc_jwks_file")
    if settings.oidc_rules is None:
        raise ValueError("oidc_issuer is set: oidc_rules is required too (the file mapping claims to access)")
    if settings.oidc_public_key is not None:
        keys = {"": load_pem_key(settings.oidc_public_key)}
    else:
        assert settings.oidc_jwks_file is not None
        keys = load_jwks(settings.oidc_jwks_file)
    verifier = JwtVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        keys=keys,
        algorithms=parse_algorithms(settings.oidc_algorithms),
        leeway_seconds=settings.oidc_leeway,
    )
    return ExternalLogin(verifier, load_rules(settings.oidc_rules), users)
