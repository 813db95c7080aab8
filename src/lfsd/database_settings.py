"""The metadata database opened from the settings, and nothing else: what the short-lived processes (the SSH
shell, the pre-receive hook) need, without the object store and password hashing ``resources`` also brings."""

from __future__ import annotations

from lfsd.config import Settings
from lfsd.db.database import Database
from lfsd.db.engine import PoolOptions, create_engine, parse_url


def open_database(settings: Settings) -> Database:
    password = settings.database_password.get_secret_value() if settings.database_password else None
    url = parse_url(settings.effective_database_url, password)
    if url.get_backend_name() == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    pool = PoolOptions(
        size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        recycle_seconds=settings.database_pool_recycle,
        timeout_seconds=settings.database_pool_timeout,
        pre_ping=settings.database_pool_pre_ping,
        connect_timeout_seconds=settings.database_connect_timeout,
        statement_timeout_seconds=settings.database_timeout,
    )
    return Database(create_engine(url, pool), timeout_seconds=settings.database_timeout)
