"""One Settings object, from ``LFSD_*`` environment variables and command-line options; built once, passed down.

A pydantic model that reads the environment itself (``_from_environment``) rather than a ``pydantic_settings``
``BaseSettings``: that package and what it imports (dotenv, argparse, its sources) cost 1.6 MiB of every server's
resident size (issue 17) for what is here a dozen lines. The rules are the ones ``BaseSettings`` applied:
``LFSD_`` + the field's name in any case; arguments given to ``Settings(...)`` win over the environment; values are
strings that pydantic converts as it converts any input (``true``/``false``, numbers, paths); defaults are validated
too. No field takes a list or a mapping from one variable (``trusted_proxies`` splits its own string).
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lfsd.core.text import ascii_number

_INITIAL_TOKEN: Final = re.compile(r"lfsd_[A-Za-z0-9_-]{32,94}")
ENV_PREFIX: Final = "lfsd_"


class Settings(BaseModel):
    """Every field is documented in docs/configuration.md (a test checks it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: object) -> object:
        """``LFSD_<FIELD>`` (any case) for each field not given as an argument."""
        if not isinstance(given, dict):
            return given
        found = {
            name: value
            for key, value in os.environ.items()
            if key.lower().startswith(ENV_PREFIX) and (name := key.lower().removeprefix(ENV_PREFIX)) in cls.model_fields
        }
        return {**found, **given}

    listen: str = Field("127.0.0.1:8080", description="HOST:PORT to listen on")
    data_dir: Path = Field(Path("lfsd-data"), description="directory for the SQLite database, objects and key")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite inside data_dir")
    database_password: SecretStr | None = Field(
        None, description="database password; replaces the one in database_url, which then need not hold it"
    )
    database_pool_size: int = Field(10, ge=1, description="connections kept open per process (MySQL/PostgreSQL)")
    database_max_overflow: int = Field(10, ge=0, description="extra connections allowed under load")
    database_pool_recycle: int = Field(1800, ge=0, description="seconds before a connection is replaced")
    database_pool_timeout: float = Field(10.0, gt=0, description="seconds to wait for a free connection")
    database_pool_pre_ping: bool = Field(True, description="check a pooled connection before using it")
    database_connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for a new connection")
    database_timeout: float = Field(30.0, gt=0, description="seconds a metadata transaction may take (503 after)")
    migrate: bool = Field(False, description="apply pending migrations on start (SQLite always does)")
    storage: str | None = Field(
        None, description="file:///PATH or s3://BUCKET[/PREFIX]; default: local files in data_dir"
    )
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint (MinIO, Ceph, moto); default: AWS")
    s3_region: str | None = Field(None, description="S3 region; default: the AWS configuration's, else us-east-1")
    s3_path_style: bool = Field(False, description="path-style bucket addressing (MinIO, Ceph)")
    s3_part_size: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="bytes per multipart upload part")
    s3_parts_in_flight: int = Field(4, ge=1, le=64, description="parts of one upload sent at the same time")
    s3_direct: bool = Field(
        False, description="hand out presigned S3 URLs in batch responses instead of lfsd's own hrefs"
    )
    s3_trust_checksum: bool = Field(
        False,
        description="direct mode: accept the store's SHA-256 of an upload instead of reading it back (only for "
        "stores that refuse a body not matching x-amz-checksum-sha256, as AWS S3 does)",
    )
    metrics_listen: str | None = Field(
        None, description="HOST:PORT for /metrics, /healthz and /readyz on a listener of their own"
    )
    shutdown_grace: float = Field(
        900.0, ge=0, description="seconds in-flight transfers may run after SIGTERM before they are cancelled"
    )
    log_format: Literal["auto", "json", "text"] = Field("auto", description="json, text, or auto (text on a TTY)")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")
    public_url: str | None = Field(
        None, description="external base URL for transfer links; default: the scheme and host of each request"
    )
    secret_key: SecretStr | None = Field(
        None, description="key signing transfer links; default: generated once into data_dir/secret.key"
    )
    link_ttl: int = Field(1800, ge=30, le=86400, description="seconds a transfer link stays valid")
    batch_max_objects: int = Field(1000, ge=1, description="most objects in one batch request (413 above)")
    batch_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest batch request body (413 above)")
    locks_default_limit: int = Field(100, ge=1, description="locks per page when the client gives no limit")
    locks_max_limit: int = Field(1000, ge=1, description="largest page of locks a client may ask for (422 above)")
    max_transfers_per_user: int = Field(
        64, ge=1, description="uploads and downloads one user may run at once (429 + Retry-After above)"
    )
    body_timeout: float = Field(
        120.0, gt=0, description="seconds a request body may stall before 408, or a download before it is cut off"
    )
    keepalive_timeout: float = Field(
        75.0, gt=0, description="seconds a connection may sit idle, or send its request headers, before it is closed"
    )
    max_url_length: int = Field(4096, ge=256, description="longest request path and query (414 above)")
    max_header_bytes: int = Field(16384, ge=1024, description="largest request header block (431 above)")
    max_object_size: int = Field(2**40, ge=0, description="largest object accepted for upload (413 above)")
    buffer_size: int = Field(
        4 * 1024 * 1024, ge=64 * 1024, description="largest pooled transfer buffer (a power of two); uploads use two"
    )
    transfer_memory: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, description="memory budget for transfer buffers before they shrink"
    )

    quota_default_bytes: int = Field(
        0, ge=0, description="bytes a repository without a quota of its own may hold (507 above); 0: no limit"
    )

    @field_validator("buffer_size")
    @classmethod
    def _check_buffer_size(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("buffer_size must be a power of two")
        return value

    io_threads: int = Field(16, ge=1, le=256, description="worker threads for file I/O and hashing")
    fsync: bool = Field(True, description="fsync each object before it becomes visible")
    direct_io: bool = Field(True, description="write object files with O_DIRECT where the filesystem allows it")
    initial_admin_token: SecretStr | None = Field(
        None,
        description="the token the first start gives admin (from a Kubernetes Secret, say); "
        "default: a random one written to data_dir/admin-token",
    )

    @field_validator("initial_admin_token")
    @classmethod
    def _check_initial_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the value; the shape is a token's, with at least 32 random characters.
        if value is not None and _INITIAL_TOKEN.fullmatch(value.get_secret_value()) is None:
            raise ValueError(
                "initial_admin_token must be lfsd_ and 32 to 94 letters, digits, '-' or '_' "
                "(e.g. lfsd_$(openssl rand -hex 32))"
            )
        return value

    @field_validator("listen", "metrics_listen", "ssh_listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        number = ascii_number(port, 5)
        if not sep or not host or number is None or number > 65535:
            raise ValueError("must be HOST:PORT")
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < 32:
            raise ValueError("secret_key must be at least 32 bytes")
        return value

    @field_validator("storage")
    @classmethod
    def _check_storage(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://")):
            raise ValueError("storage must be file:///PATH or s3://BUCKET[/PREFIX]")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return host_of(self.listen)

    @property
    def port(self) -> int:
        return port_of(self.listen)

    @property
    def local_storage_root(self) -> Path:
        """Where local objects live: the file:// path, or the data dir."""
        if self.storage is not None and self.storage.startswith("file://"):
            return Path(self.storage.removeprefix("file://"))
        return self.data_dir

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lfsd.db').resolve()}"

    # Authentication: password checks, the failed-login throttle, client addresses and link revocation.
    redis_url: str | None = Field(
        None, description="redis://HOST:PORT/DB for state shared by replicas (the login throttle); default: in process"
    )
    redis_key_prefix: str = Field("lfsd:", min_length=1, max_length=100, description="prefix of lfsd's Redis keys")
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = Field(
        (), description="CIDRs of reverse proxies whose X-Forwarded-For is believed; default: none"
    )
    password_threads: int = Field(2, ge=1, le=64, description="password (Argon2id) checks run at once")
    password_queue: int = Field(16, ge=0, description="password checks that may wait for a thread (503 above)")
    credential_cache_size: int = Field(10000, ge=0, description="verified password logins remembered (0: none)")
    credential_cache_ttl: int = Field(300, ge=0, le=3600, description="seconds a verified password is remembered")
    login_failure_window: int = Field(300, ge=1, description="seconds over which failed logins are counted")
    login_failures_per_user_address: int = Field(
        10, ge=1, description="failed logins of one user name from one address per window (429 above)"
    )
    login_failures_per_address: int = Field(
        50, ge=1, description="failed logins from one address, any user names, per window (429 above)"
    )
    login_failures_per_user: int = Field(
        100, ge=1, description="failed logins of one user name from anywhere per window (429 above)"
    )
    login_trusted_address_ttl: int = Field(
        7 * 86400, ge=0, description="seconds an address stays exempt from the per-user limit after a good login"
    )
    link_standing_ttl: float = Field(
        5.0, ge=0, le=300, description="seconds a transfer link's user, token and grant check is remembered"
    )
    token_max_days: int | None = Field(
        None, ge=1, le=36500, description="days a new personal access token may live at most (None: no limit)"
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_trusted_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    drain_delay: float = Field(
        5.0, ge=0, description="seconds lfsd keeps accepting after SIGTERM, with readiness 503, so balancers move away"
    )

    # Git hosting (docs/git-hosting.md).
    git_root: Path | None = Field(None, description="directory of the bare Git repositories; default: data_dir/git")
    git_gzip_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="most bytes a gzip Git request body may inflate to (413 above)"
    )

    @property
    def effective_git_root(self) -> Path:
        return self.git_root if self.git_root is not None else self.data_dir / "git"

    # Performance (issue 17): back-pressure and server processes.
    transfer_queue_wait: float = Field(
        5.0, ge=0, description="seconds a transfer over max_transfers_per_user waits for a slot before 429 (0: none)"
    )
    workers: int = Field(1, ge=1, le=256, description="server processes sharing the port (`auto`: one per core)")

    # SSH transfers (issue 15): git-lfs-transfer sessions.
    ssh_idle_timeout: float = Field(
        900.0, gt=0, description="seconds a git-lfs-transfer session may sit idle between commands before it ends"
    )
    ssh_stall_timeout: float = Field(
        120.0, gt=0, description="seconds a git-lfs-transfer command's packets or an object's bytes may stall"
    )

    # External identities (issue 12): JWTs from one issuer, mapped by rules (docs/administration.md).
    oidc_issuer: str | None = Field(None, description="accepted JWT issuer (`iss`); setting it enables JWT Bearer auth")
    oidc_audience: str | None = Field(None, description="required JWT audience (`aud`), e.g. this server's URL")
    oidc_public_key: Path | None = Field(None, description="PEM public key verifying JWTs (or oidc_jwks_file)")
    oidc_jwks_file: Path | None = Field(None, description="JWKS file verifying JWTs, keys chosen by `kid`")
    oidc_algorithms: str = Field("RS256,ES256", description="JWT signature algorithms accepted (asymmetric only)")
    oidc_leeway: int = Field(30, ge=0, le=300, description="seconds of clock skew allowed on exp, nbf and iat")
    oidc_rules: Path | None = Field(None, description="TOML or JSON file of rules mapping JWT claims to access")

    # Audit retention (issue 12).
    audit_retention_days: int | None = Field(
        None, ge=1, le=36500, description="days audit entries are kept; serve prunes older ones daily (None: keep)"
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return usable_cores()
        return value

    # The web UI (docs/ui.md).
    ui: bool = Field(True, description="serve the web UI under /ui/ (false: nothing of it is loaded)")
    ui_session_ttl: int = Field(
        12 * 3600, ge=300, le=30 * 86400, description="seconds a web UI sign-in lasts before it must be repeated"
    )

    # SSH (docs/ssh.md): keys, the OpenSSH forced command and git-lfs-authenticate.
    ssh_user: str = Field(
        "git", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="the SSH login name clients use (ssh://git@host/…)"
    )
    ssh_command: str | None = Field(
        None, description="the program sshd runs as the forced command; default: this Python with -m lfsd"
    )
    ssh_token_ttl: int = Field(
        900, ge=60, le=86400, description="seconds git-lfs-authenticate's credential stays valid"
    )
    ssh_listen: str | None = Field(
        None, description="HOST:PORT for the embedded SSH server started by lfsd serve; default: none"
    )
    ssh_transfer: bool = Field(
        True, description="serve git-lfs-transfer (pure SSH); false: refuse it so clients fall back to HTTP"
    )

    # Garbage collection (docs/operations.md, "Garbage collection").
    gc_grace: int = Field(
        86400, ge=30, description="seconds an object stays unreferenced before `lfsd gc` may delete it (≥ link_ttl)"
    )
    gc_lease: int = Field(600, ge=5, le=86400, description="seconds a collector's lease lasts without being renewed")

    @model_validator(mode="after")
    def _check_gc_grace(self) -> Settings:
        if self.gc_grace < self.link_ttl:
            raise ValueError(f"gc_grace ({self.gc_grace}) must be at least link_ttl ({self.link_ttl})")
        return self


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, lowered to a container's CPU quota (cgroup v2), so that a pod
    limited to 2 CPUs on a 64-core node runs 2 workers, not 64."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, -(-int(quota) // int(period))))


def host_of(listen: str) -> str:
    return listen.rpartition(":")[0].strip("[]")


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])
