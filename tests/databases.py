"""Real database servers for the tests: SQLite files, and fresh databases on the local MariaDB and PostgreSQL.

Where MariaDB or PostgreSQL is not reachable the cases are skipped, except in CI (``CI=true``), where a missing
server fails the run.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from typing import Final

import pytest

BACKENDS: Final = ("sqlite", "mariadb", "postgresql")
TABLES: Final = (
    "ssh_keys",
    "ui_sessions",
    "audit",
    "locks",
    "repo_objects",
    "objects",
    "grants",
    "tokens",
    "repos",
    "users",
    "gc_lease",
    "usage_days",
    "repo_usage",
    "owner_usage",
)


@dataclass(frozen=True)
class Server:
    backend: str
    host: str
    port: int

    def url(self, database: str) -> str:
        if self.backend == "mariadb":
            return f"mysql://root@{self.host}:{self.port}/{database}"
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def admin(self, sql: str, database: str | None = None) -> None:
        if self.backend == "mariadb":
            command = ["mysql", "-uroot", f"-h{self.host}", f"-P{self.port}", "-e", sql]
            if database:
                command.insert(1, database)
        else:
            command = ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-h", self.host, "-p", str(self.port), "-U", "postgres"]
            command += ["-d", database or "postgres", "-c", sql]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def create(self) -> str:
        name = f"lfsd_test_{os.getpid()}_{secrets.token_hex(4)}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def drop(self, name: str) -> None:
        if self.backend == "postgresql":
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        else:
            self.admin(f"DROP DATABASE IF EXISTS {name}")

    def truncate(self, name: str) -> None:
        if self.backend == "postgresql":
            self.admin(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE", name)
        else:
            statements = "; ".join(f"TRUNCATE TABLE {table}" for table in TABLES)
            self.admin(f"SET FOREIGN_KEY_CHECKS=0; {statements}; SET FOREIGN_KEY_CHECKS=1", name)


_PORTS: Final = {"mariadb": 3306, "postgresql": 5432}


def server_for(backend: str) -> Server:
    """The local server for ``backend``, or a skip (a failure in CI) when it is not reachable."""
    port = _PORTS[backend]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    except OSError:
        reason = f"{backend} is not reachable on 127.0.0.1:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI requires it")
        pytest.skip(reason)
    return Server(backend, "127.0.0.1", port)
