"""One Settings object, from ``LFSD_*`` environment variables and command-line options; built once, passed down.

A frozen dataclass that reads the environment itself and converts its own strings (``lfsd.setting_values``), without
pydantic: pydantic and pydantic-core cost 9 MiB of every idle server's resident size (issue 17,
docs/performance.md "Idle memory"); only the admin API, loaded on its first request, still uses them. The rules are
the ones pydantic's lax mode applied, pinned by tests/test_settings_conversion.py: ``LFSD_`` + the field's name in any
case; arguments given to ``Settings(...)`` win over the environment, and an unknown argument is refused (mypy checks
their names and types through ``SettingsArgs``; ``Settings.parse`` takes names known only at run time); values are
strings converted by the field's type (``true``/``false``, numbers, paths, the literals, secrets), then checked
against the field's bounds and the checks below; defaults are checked too. No field takes a list or a mapping from one
variable (``trusted_proxies`` splits its own string). Every problem found is reported, one line per setting, in one
``SettingsError``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Final, Literal, TypedDict, Unpack, get_type_hints

from lfsd.core.text import ascii_number
from lfsd.setting_values import Invalid, SecretStr, Spec, converter_for, setting

__all__ = ["ENV_PREFIX", "SecretStr", "Settings", "SettingsArgs", "SettingsError", "host_of", "port_of", "usable_cores"]

_INITIAL_TOKEN: Final = re.compile(r"lfsd_[A-Za-z0-9_-]{32,94}")
ENV_PREFIX: Final = "lfsd_"


class SettingsError(ValueError):
    """Settings refused: ``problems`` holds (setting, message) pairs; the text is one ``setting: message`` line each."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{name}: {message}" for name, message in problems))
        self.problems: Final = tuple(problems)

    @property
    def first(self) -> str:
        """The first problem as ``invalid setting NAME: MESSAGE``: what the CLI prints."""
        name, message = self.problems[0]
        return f"invalid setting {name}: {message}"


class SettingsArgs(TypedDict, total=False):
    """``Settings(...)``'s arguments, so that mypy checks their names and types: each setting as its own type or as
    text, which is converted as its ``LFSD_*`` variable is. A test keeps this in step with the fields."""

    listen: str
    data_dir: Path | str
    database_url: str | None
    database_password: SecretStr | str | None
    database_pool_size: int | str
    database_max_overflow: int | str
    database_pool_recycle: int | str
    database_pool_timeout: float | str
    database_pool_pre_ping: bool | str
    database_connect_timeout: float | str
    database_timeout: float | str
    migrate: bool | str
    storage: str | None
    s3_endpoint_url: str | None
    s3_region: str | None
    s3_path_style: bool | str
    s3_part_size: int | str
    s3_parts_in_flight: int | str
    s3_direct: bool | str
    s3_trust_checksum: bool | str
    metrics_listen: str | None
    shutdown_grace: float | str
    log_format: Literal["auto", "json", "text"] | str
    log_level: Literal["debug", "info", "warning", "error"] | str
    public_url: str | None
    secret_key: SecretStr | str | None
    link_ttl: int | str
    batch_max_objects: int | str
    batch_max_bytes: int | str
    locks_default_limit: int | str
    locks_max_limit: int | str
    max_transfers_per_user: int | str
    body_timeout: float | str
    keepalive_timeout: float | str
    max_url_length: int | str
    max_header_bytes: int | str
    max_object_size: int | str
    buffer_size: int | str
    transfer_memory: int | str
    quota_default_bytes: int | str
    io_threads: int | str
    fsync: bool | str
    direct_io: bool | str
    initial_admin_token: SecretStr | str | None
    redis_url: str | None
    redis_key_prefix: str
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] | str
    password_threads: int | str
    password_queue: int | str
    credential_cache_size: int | str
    credential_cache_ttl: int | str
    login_failure_window: int | str
    login_failures_per_user_address: int | str
    login_failures_per_address: int | str
    login_failures_per_user: int | str
    login_trusted_address_ttl: int | str
    link_standing_ttl: float | str
    token_max_days: int | str | None
    drain_delay: float | str
    git_root: Path | str | None
    git_gzip_max_bytes: int | str
    transfer_queue_wait: float | str
    workers: int | str
    ssh_idle_timeout: float | str
    ssh_stall_timeout: float | str
    oidc_issuer: str | None
    oidc_audience: str | None
    oidc_public_key: Path | str | None
    oidc_jwks_file: Path | str | None
    oidc_algorithms: str
    oidc_leeway: int | str
    oidc_rules: Path | str | None
    audit_retention_days: int | str | None
    ui: bool | str
    ui_session_ttl: int | str
    ssh_user: str
    ssh_command: str | None
    ssh_token_ttl: int | str
    ssh_listen: str | None
    ssh_transfer: bool | str
    gc_grace: int | str
    gc_lease: int | str


@dataclasses.dataclass(frozen=True, init=False)
class Settings:
    """Every field is documented in docs/configuration.md (a test checks it)."""

    listen: str = setting("127.0.0.1:8080", description="HOST:PORT to listen on")
    data_dir: Path = setting(Path("lfsd-data"), description="directory for the SQLite database, objects and key")
    database_url: str | None = setting(None, description="SQLAlchemy URL; default: SQLite inside data_dir")
    database_password: SecretStr | None = setting(
        None, description="database password; replaces the one in database_url, which then need not hold it"
    )
    database_pool_size: int = setting(10, ge=1, description="connections kept open per process (MySQL/PostgreSQL)")
    database_max_overflow: int = setting(10, ge=0, description="extra connections allowed under load")
    database_pool_recycle: int = setting(1800, ge=0, description="seconds before a connection is replaced")
    database_pool_timeout: float = setting(10.0, gt=0, description="seconds to wait for a free connection")
    database_pool_pre_ping: bool = setting(True, description="check a pooled connection before using it")
    database_connect_timeout: float = setting(5.0, gt=0, description="seconds to wait for a new connection")
    database_timeout: float = setting(30.0, gt=0, description="seconds a metadata transaction may take (503 after)")
    migrate: bool = setting(False, description="apply pending migrations on start (SQLite always does)")
    storage: str | None = setting(
        None, description="file:///PATH or s3://BUCKET[/PREFIX]; default: local files in data_dir"
    )
    s3_endpoint_url: str | None = setting(None, description="S3 API endpoint (MinIO, Ceph, moto); default: AWS")
    s3_region: str | None = setting(None, description="S3 region; default: the AWS configuration's, else us-east-1")
    s3_path_style: bool = setting(False, description="path-style bucket addressing (MinIO, Ceph)")
    s3_part_size: int = setting(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="bytes per multipart upload part")
    s3_parts_in_flight: int = setting(4, ge=1, le=64, description="parts of one upload sent at the same time")
    s3_direct: bool = setting(
        False, description="hand out presigned S3 URLs in batch responses instead of lfsd's own hrefs"
    )
    s3_trust_checksum: bool = setting(
        False,
        description="direct mode: accept the store's SHA-256 of an upload instead of reading it back (only for "
        "stores that refuse a body not matching x-amz-checksum-sha256, as AWS S3 does)",
    )
    metrics_listen: str | None = setting(
        None, description="HOST:PORT for /metrics, /healthz and /readyz on a listener of their own"
    )
    shutdown_grace: float = setting(
        900.0, ge=0, description="seconds in-flight transfers may run after SIGTERM before they are cancelled"
    )
    log_format: Literal["auto", "json", "text"] = setting("auto", description="json, text, or auto (text on a TTY)")
    log_level: Literal["debug", "info", "warning", "error"] = setting("info", description="lowest level logged")
    public_url: str | None = setting(
        None, description="external base URL for transfer links; default: the scheme and host of each request"
    )
    secret_key: SecretStr | None = setting(
        None, description="key signing transfer links; default: generated once into data_dir/secret.key"
    )
    link_ttl: int = setting(1800, ge=30, le=86400, description="seconds a transfer link stays valid")
    batch_max_objects: int = setting(1000, ge=1, description="most objects in one batch request (413 above)")
    batch_max_bytes: int = setting(4 * 1024 * 1024, ge=1024, description="largest batch request body (413 above)")
    locks_default_limit: int = setting(100, ge=1, description="locks per page when the client gives no limit")
    locks_max_limit: int = setting(1000, ge=1, description="largest page of locks a client may ask for (422 above)")
    max_transfers_per_user: int = setting(
        64, ge=1, description="uploads and downloads one user may run at once (429 + Retry-After above)"
    )
    body_timeout: float = setting(
        120.0, gt=0, description="seconds a request body may stall before 408, or a download before it is cut off"
    )
    keepalive_timeout: float = setting(
        75.0, gt=0, description="seconds a connection may sit idle, or send its request headers, before it is closed"
    )
    max_url_length: int = setting(4096, ge=256, description="longest request path and query (414 above)")
    max_header_bytes: int = setting(16384, ge=1024, description="largest request header block (431 above)")
    max_object_size: int = setting(2**40, ge=0, description="largest object accepted for upload (413 above)")
    buffer_size: int = setting(
        4 * 1024 * 1024, ge=64 * 1024, description="largest pooled transfer buffer (a power of two); uploads use two"
    )
    transfer_memory: int = setting(
        64 * 1024 * 1024, ge=1024 * 1024, description="memory budget for transfer buffers before they shrink"
    )

    quota_default_bytes: int = setting(
        0, ge=0, description="bytes a repository without a quota of its own may hold (507 above); 0: no limit"
    )

    io_threads: int = setting(16, ge=1, le=256, description="worker threads for file I/O and hashing")
    fsync: bool = setting(True, description="fsync each object before it becomes visible")
    direct_io: bool = setting(True, description="write object files with O_DIRECT where the filesystem allows it")
    initial_admin_token: SecretStr | None = setting(
        None,
        description="the token the first start gives admin (from a Kubernetes Secret, say); "
        "default: a random one written to data_dir/admin-token",
    )

    # Authentication: password checks, the failed-login throttle, client addresses and link revocation.
    redis_url: str | None = setting(
        None, description="redis://HOST:PORT/DB for state shared by replicas (the login throttle); default: in process"
    )
    redis_key_prefix: str = setting("lfsd:", min_length=1, max_length=100, description="prefix of lfsd's Redis keys")
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = setting(
        (), description="CIDRs of reverse proxies whose X-Forwarded-For is believed; default: none"
    )
    password_threads: int = setting(2, ge=1, le=64, description="password (Argon2id) checks run at once")
    password_queue: int = setting(16, ge=0, description="password checks that may wait for a thread (503 above)")
    credential_cache_size: int = setting(10000, ge=0, description="verified password logins remembered (0: none)")
    credential_cache_ttl: int = setting(300, ge=0, le=3600, description="seconds a verified password is remembered")
    login_failure_window: int = setting(300, ge=1, description="seconds over which failed logins are counted")
    login_failures_per_user_address: int = setting(
        10, ge=1, description="failed logins of one user name from one address per window (429 above)"
    )
    login_failures_per_address: int = setting(
        50, ge=1, description="failed logins from one address, any user names, per window (429 above)"
    )
    login_failures_per_user: int = setting(
        100, ge=1, description="failed logins of one user name from anywhere per window (429 above)"
    )
    login_trusted_address_ttl: int = setting(
        7 * 86400, ge=0, description="seconds an address stays exempt from the per-user limit after a good login"
    )
    link_standing_ttl: float = setting(
        5.0, ge=0, le=300, description="seconds a transfer link's user, token and grant check is remembered"
    )
    token_max_days: int | None = setting(
        None, ge=1, le=36500, description="days a new personal access token may live at most (None: no limit)"
    )

    drain_delay: float = setting(
        5.0, ge=0, description="seconds lfsd keeps accepting after SIGTERM, with readiness 503, so balancers move away"
    )

    # Git hosting (docs/git-hosting.md).
    git_root: Path | None = setting(None, description="directory of the bare Git repositories; default: data_dir/git")
    git_gzip_max_bytes: int = setting(
        256 * 1024 * 1024, ge=1024, description="most bytes a gzip Git request body may inflate to (413 above)"
    )

    # Performance (issue 17): back-pressure and server processes.
    transfer_queue_wait: float = setting(
        5.0, ge=0, description="seconds a transfer over max_transfers_per_user waits for a slot before 429 (0: none)"
    )
    workers: int = setting(1, ge=1, le=256, description="server processes sharing the port (`auto`: one per core)")

    # SSH transfers (issue 15): git-lfs-transfer sessions.
    ssh_idle_timeout: float = setting(
        900.0, gt=0, description="seconds a git-lfs-transfer session may sit idle between commands before it ends"
    )
    ssh_stall_timeout: float = setting(
        120.0, gt=0, description="seconds a git-lfs-transfer command's packets or an object's bytes may stall"
    )

    # External identities (issue 12): JWTs from one issuer, mapped by rules (docs/administration.md).
    oidc_issuer: str | None = setting(
        None, description="accepted JWT issuer (`iss`); setting it enables JWT Bearer auth"
    )
    oidc_audience: str | None = setting(None, description="required JWT audience (`aud`), e.g. this server's URL")
    oidc_public_key: Path | None = setting(None, description="PEM public key verifying JWTs (or oidc_jwks_file)")
    oidc_jwks_file: Path | None = setting(None, description="JWKS file verifying JWTs, keys chosen by `kid`")
    oidc_algorithms: str = setting("RS256,ES256", description="JWT signature algorithms accepted (asymmetric only)")
    oidc_leeway: int = setting(30, ge=0, le=300, description="seconds of clock skew allowed on exp, nbf and iat")
    oidc_rules: Path | None = setting(None, description="TOML or JSON file of rules mapping JWT claims to access")

    # Audit retention (issue 12).
    audit_retention_days: int | None = setting(
        None, ge=1, le=36500, description="days audit entries are kept; serve prunes older ones daily (None: keep)"
    )

    # The web UI (docs/ui.md).
    ui: bool = setting(True, description="serve the web UI under /ui/ (false: nothing of it is loaded)")
    ui_session_ttl: int = setting(
        12 * 3600, ge=300, le=30 * 86400, description="seconds a web UI sign-in lasts before it must be repeated"
    )

    # SSH (docs/ssh.md): keys, the OpenSSH forced command and git-lfs-authenticate.
    ssh_user: str = setting(
        "git", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="the SSH login name clients use (ssh://git@host/…)"
    )
    ssh_command: str | None = setting(
        None, description="the program sshd runs as the forced command; default: this Python with -P -m lfsd"
    )
    ssh_token_ttl: int = setting(
        900, ge=60, le=86400, description="seconds git-lfs-authenticate's credential stays valid"
    )
    ssh_listen: str | None = setting(
        None, description="HOST:PORT for the embedded SSH server started by lfsd serve; default: none"
    )
    ssh_transfer: bool = setting(
        True, description="serve git-lfs-transfer (pure SSH); false: refuse it so clients fall back to HTTP"
    )

    # Garbage collection (docs/operations.md, "Garbage collection").
    gc_grace: int = setting(
        86400, ge=30, description="seconds an object stays unreferenced before `lfsd gc` may delete it (≥ link_ttl)"
    )
    gc_lease: int = setting(600, ge=5, le=86400, description="seconds a collector's lease lasts without being renewed")

    def __init__(self, **given: Unpack[SettingsArgs]) -> None:
        """``LFSD_<FIELD>`` (any case) for each field not given as an argument; then each value converted and
        checked."""
        self._load(given)

    @classmethod
    def parse(cls, given: Mapping[str, object]) -> Settings:
        """``Settings(**given)`` for names and values known only at run time (options from a command line): checked
        as arguments are, an unknown name included, but only when it runs."""
        settings = cls.__new__(cls)
        settings._load(given)
        return settings

    def replace(self, **changes: Unpack[SettingsArgs]) -> Settings:
        """A copy with ``changes`` applied, converted and checked as ``Settings(...)`` arguments are."""
        return Settings.parse({**{name: getattr(self, name) for name in _SPECS}, **changes})

    def _load(self, given: Mapping[str, object]) -> None:
        unknown = sorted(set(given) - _SPECS.keys())
        problems = [(name, "not a setting") for name in unknown]
        found = {
            name: value
            for key, value in os.environ.items()
            if key.lower().startswith(ENV_PREFIX) and (name := key.lower().removeprefix(ENV_PREFIX)) in _SPECS
        }
        raw: dict[str, object] = {**found, **given}
        values: dict[str, object] = {}
        for name, spec in _SPECS.items():
            try:
                value = raw.get(name, spec.default)
                before = _BEFORE.get(name)
                value = spec.convert(value if before is None else before(value))
                check = _CHECKS.get(name)
                values[name] = value if check is None or value is None else check(value)
            except Invalid as exc:
                problems.append((name, exc.message))
        grace, ttl = values.get("gc_grace"), values.get("link_ttl")
        if isinstance(grace, int) and isinstance(ttl, int) and grace < ttl:
            problems.append(("gc_grace", f"gc_grace ({grace}) must be at least link_ttl ({ttl})"))
        if problems:
            raise SettingsError(problems)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def descriptions(cls) -> Mapping[str, str]:
        """Each setting's name and its one-line description, in declaration order."""
        return {name: spec.description for name, spec in _SPECS.items()}

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

    @property
    def effective_git_root(self) -> Path:
        return self.git_root if self.git_root is not None else self.data_dir / "git"


# The checks beyond a field's type and bounds (pydantic's field validators before): each gets the converted value
# (never None) and returns the value to keep.


def _buffer_size(value: int) -> int:
    if value & (value - 1):
        raise Invalid("buffer_size must be a power of two")
    return value


def _initial_admin_token(value: SecretStr) -> SecretStr:
    # The message never repeats the value; the shape is a token's, with at least 32 random characters.
    if _INITIAL_TOKEN.fullmatch(value.get_secret_value()) is None:
        raise Invalid(
            "initial_admin_token must be lfsd_ and 32 to 94 letters, digits, '-' or '_' "
            "(e.g. lfsd_$(openssl rand -hex 32))"
        )
    return value


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    number = ascii_number(port, 5)
    if not sep or not host or number is None or number > 65535:
        raise Invalid("must be HOST:PORT")
    return value


def _secret_key(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().encode("utf-8")) < 32:
        raise Invalid("secret_key must be at least 32 bytes")
    return value


def _storage(value: str) -> str:
    if not value.startswith(("file://", "s3://")):
        raise Invalid("storage must be file:///PATH or s3://BUCKET[/PREFIX]")
    return value


def _public_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise Invalid("public_url must start with http:// or https://")
    return value.rstrip("/")


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise Invalid("redis_url must start with redis://, rediss:// or unix://")
    return value


def _auto_workers(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return usable_cores()
    return value


_BEFORE: Final[dict[str, Callable[[object], object]]] = {"workers": _auto_workers}

_CHECKS: Final[dict[str, Callable[[Any], object]]] = {
    "buffer_size": _buffer_size,
    "initial_admin_token": _initial_admin_token,
    "listen": _listen,
    "metrics_listen": _listen,
    "ssh_listen": _listen,
    "secret_key": _secret_key,
    "storage": _storage,
    "public_url": _public_url,
    "redis_url": _redis_url,
}


def _specs() -> dict[str, Spec]:
    hints = get_type_hints(Settings)
    return {
        field.name: dataclasses.replace(
            field.metadata["spec"], convert=converter_for(field.name, hints[field.name], field.metadata["spec"])
        )
        for field in dataclasses.fields(Settings)
    }


_SPECS: Final = _specs()


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
