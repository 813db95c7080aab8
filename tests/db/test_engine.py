"""Database URLs: drivers, TLS options, and passwords that never show."""

from __future__ import annotations

import importlib
import ssl
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidRequestError

from lfsd.db.aio import async_url, create_async_engine
from lfsd.db.engine import DatabaseUrlError, _tls_context, create_engine, parse_url
from tests.e2e.harness import cli


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite"),
        ("mysql://u:p@db/lfsd", "mysql+asyncmy"),
        ("mariadb://u@db/lfsd", "mysql+asyncmy"),
        ("postgresql://u@db/lfsd", "postgresql+asyncpg"),
        ("postgres://u@db/lfsd", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/lfsd", "postgresql+asyncpg"),
    ],
)
def test_drivers(url: str, driver: str) -> None:
    assert parse_url(url).drivername == driver


@pytest.mark.parametrize("backend", ["sqlite", "mysql", "mariadb", "postgresql"])
def test_each_driver_gets_the_dialect_sqlalchemys_private_async_flag_would_pick(backend: str) -> None:
    """``lfsd.db.aio`` creates engines without ``create_engine(_is_async=True)``: this fails when a driver SQLAlchemy
    ships starts to mean two dialects and ``async_url`` does not name the async one."""
    # The drivers as SQLAlchemy's own loader finds them: the dialect package's modules with a ``dialect``; ``base``
    # is what a URL without a driver gets, which parse_url never leaves.
    package = importlib.import_module(f"sqlalchemy.dialects.{'mysql' if backend == 'mariadb' else backend}")
    drivers = sorted(name for name, value in vars(package).items() if hasattr(value, "dialect") and name != "base")
    assert len(drivers) >= 3, drivers
    for driver in drivers:
        url = make_url(f"{backend}+{driver}://u@db/lfsd")
        assert async_url(url).get_dialect() is url.get_dialect().get_async_dialect_cls(url), driver


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:tiger@db/x",
        "mysql+pymysql://u:tiger@db/x",
        "sqlite+pysqlite:////tmp/x.db",
        "postgresql+asyncpg+x://u:tiger@db/x",
    ],
)
def test_a_driver_lfsd_does_not_speak_is_refused_by_name(url: str) -> None:
    with pytest.raises(DatabaseUrlError, match="without '\\+") as info:
        parse_url(url)
    assert "tiger" not in str(info.value)


def test_mariadb_with_its_driver_named() -> None:
    assert parse_url("mariadb+asyncmy://u@db/lfsd").drivername == "mysql+asyncmy"


def test_a_sync_driver_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not async"):
        create_async_engine(make_url("sqlite+pysqlite://"))


def test_password_from_the_environment_replaces_the_urls() -> None:
    assert parse_url("mysql://u:old@db/x", "new").password == "new"


@pytest.mark.parametrize("url", ["oracle://scott:tiger@db/x", "::nonsense::", "mssql://sa:tiger@db/x"])
def test_unsupported_urls_never_show_the_password(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as info:
        parse_url(url)
    assert "tiger" not in str(info.value)


def test_tls_modes() -> None:
    assert _tls_context({}) is None
    assert _tls_context({"sslmode": "disable"}) is None
    required = _tls_context({"sslmode": "require"})
    assert required is not None and required.verify_mode == ssl.CERT_NONE and not required.check_hostname
    verify_ca = _tls_context({"sslmode": "verify-ca"})
    assert verify_ca is not None and verify_ca.verify_mode == ssl.CERT_REQUIRED and not verify_ca.check_hostname
    full = _tls_context({"ssl": "verify-full"})
    assert full is not None and full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname
    with pytest.raises(DatabaseUrlError, match="sslmode"):
        _tls_context({"sslmode": "sometimes"})


def test_tls_parameters_become_connect_arguments_not_url_query() -> None:
    engine = create_engine(parse_url("postgresql://u:p@127.0.0.1:1/x?sslmode=require&application_name=y"))
    assert "sslmode" not in engine.url.query and engine.url.query["application_name"] == "y"


@pytest.mark.parametrize(
    "url", ["mysql://root:s3cr3t-pw@127.0.0.1:1/lfsd", "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/lfsd"]
)
def test_unreachable_database_is_a_one_line_error_without_the_password(url: str, tmp_path: Path) -> None:
    result = cli(tmp_path, "migrate", "--database-url", url, check=False)
    assert result.returncode == 1
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "unavailable" in line and "Error" in line  # the driver's reason, for the operator
