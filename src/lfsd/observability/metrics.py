"""Every Prometheus metric lfsd exports, defined once, on a registry owned by the application (no globals).

With ``--workers N`` every worker writes its values to files in one directory (Prometheus multiprocess mode) and
``/metrics``, served by whichever worker the scrape lands on, reports them all: the whole server, from any worker, with
no messages between processes, and counters of a worker that restarted are kept. Chosen over the supervisor
scraping and summing its workers because the listener is shared (a scrape reaches any worker) and the supervisor
stays a few lines that run no event loop. In that mode, process figures (CPU, memory, file descriptors) are summed
over the server's processes, and database pool figures summed over the workers' pools.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector


class PoolStats(Protocol):
    """What the database layer reports about its connection pool (``Database.pool_stats``)."""

    @property
    def max_open(self) -> int: ...
    @property
    def open(self) -> int: ...
    @property
    def in_use(self) -> int: ...
    @property
    def idle(self) -> int: ...
    @property
    def waits(self) -> int: ...
    @property
    def wait_seconds(self) -> float: ...


# Transfers run from milliseconds to hours.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
STORAGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)


class PoolCollector(Collector):
    """The database pool, read at scrape time (the system this follows exported Go's ``sql.DBStats``)."""

    def __init__(self, stats: Callable[[], PoolStats | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._stats()
        if stats is None:
            return
        yield GaugeMetricFamily("lfsd_db_connections_max_open", "Most connections the pool may open", stats.max_open)
        yield GaugeMetricFamily("lfsd_db_connections_open", "Connections open (in use and idle)", stats.open)
        yield GaugeMetricFamily("lfsd_db_connections_in_use", "Connections in use", stats.in_use)
        yield GaugeMetricFamily("lfsd_db_connections_idle", "Idle connections", stats.idle)
        yield CounterMetricFamily("lfsd_db_connection_waits", "Checkouts that waited for a connection", stats.waits)
        yield CounterMetricFamily(
            "lfsd_db_connection_wait_seconds", "Time spent waiting for a connection", stats.wait_seconds
        )


def use_multiprocess(directory: Path) -> None:
    """Make every metric created from now on in this process write its values to ``directory`` (the library chooses
    its value class when it is imported; a worker forked from the supervisor chooses again here)."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def forget_process(directory: Path, pid: int) -> None:
    """A worker exited: its live gauges (transfers in flight, pool connections) stop counting."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


# Requests' label children bound once per (route, method, status): ``labels()`` is a lock and a lookup per metric,
# 5.4 µs per request against 1.9 with bound children (issue 17). Methods come from clients: the cache is bounded.
_BOUND_REQUEST_CHILDREN = 1024
_RequestChildren = tuple[Counter, Histogram, Counter]


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "lfsd_http_requests", "HTTP requests by route template", ["route", "method", "status"], registry=r
        )
        self.request_duration = Histogram(
            "lfsd_http_request_duration_seconds",
            "Time to answer an HTTP request, including the body",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.received_bytes = Counter("lfsd_http_received_bytes", "Request body bytes received", ["route"], registry=r)
        self.sent_bytes = Counter("lfsd_http_sent_bytes", "Response body bytes sent", ["route"], registry=r)
        self.transfers_in_flight = Gauge(
            "lfsd_transfers_in_flight",
            "Object transfers in progress",
            ["direction"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.storage_duration = Histogram(
            "lfsd_storage_operation_duration_seconds",
            "Object store operation latency",
            ["backend", "operation"],
            buckets=STORAGE_BUCKETS,
            registry=r,
        )
        self.storage_errors = Counter(
            "lfsd_storage_errors", "Object store operations that failed", ["backend", "operation"], registry=r
        )
        self.batch_objects = Counter(
            "lfsd_batch_objects", "Objects in batch requests by outcome", ["operation", "result"], registry=r
        )
        # Read from the database at scrape time: every worker sees the same number; the latest is the one.
        self.locks_held = Gauge(
            "lfsd_locks_held", "File locks held (all repositories)", registry=r, multiprocess_mode="mostrecent"
        )
        self.ssh_commands = Counter(
            "lfsd_ssh_commands", "git-lfs-transfer commands by command and status", ["command", "status"], registry=r
        )
        self.ssh_received_bytes = Counter("lfsd_ssh_received_bytes", "git-lfs-transfer bytes received", registry=r)
        self.ssh_sent_bytes = Counter("lfsd_ssh_sent_bytes", "git-lfs-transfer bytes sent", registry=r)
        # Totals of the usage counters (db/usage.py), also read at scrape time; no per-repository label.
        self.stored_bytes = Gauge(
            "lfsd_stored_bytes",
            "Bytes held by all repositories (an object held by two repositories counts twice)",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.stored_objects = Gauge(
            "lfsd_stored_objects",
            "Objects held by all repositories (an object held by two repositories counts twice)",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        # git-lfs-transfer sessions, wherever they run (lfsd_ssh_sessions counts the embedded server's connections).
        self.ssh_transfer_sessions = Counter(
            "lfsd_ssh_transfer_sessions", "git-lfs-transfer sessions started, by operation", ["operation"], registry=r
        )
        self.ssh_transfer_sessions_active = Gauge(
            "lfsd_ssh_transfer_sessions_active",
            "git-lfs-transfer sessions open, by operation",
            ["operation"],
            registry=r,
            multiprocess_mode="livesum",
        )
        for operation in ("upload", "download"):
            self.ssh_transfer_sessions.labels(operation)
            self.ssh_transfer_sessions_active.labels(operation)
        for direction in ("upload", "download"):
            self.transfers_in_flight.labels(direction)
        self._request_children: dict[tuple[str, str, int], _RequestChildren] = {}
        self._received_children: dict[str, Counter] = {}  # routes are templates: bounded
        self._storage_children: dict[tuple[str, str], Histogram] = {}  # backends and operations are ours: bounded
        # The embedded SSH server's sessions (OpenSSH's forced command runs in processes of its own, which export
        # nothing); git-lfs-transfer's own commands and bytes are counted by the transfer protocol.
        self.ssh_sessions = Counter("lfsd_ssh_sessions", "SSH sessions opened on the embedded server", registry=r)
        self.ssh_exec_commands = Counter(
            "lfsd_ssh_exec_commands", "SSH exec requests by program and outcome", ["command", "outcome"], registry=r
        )
        self.ssh_channel_bytes = Counter(
            "lfsd_ssh_channel_bytes", "SSH exec channel bytes by direction", ["direction"], registry=r
        )
        self._pool: Callable[[], PoolStats | None] = lambda: None
        self._multiprocess_dir = multiprocess_dir
        if multiprocess_dir is None:
            self._exposed = r
            r.register(PoolCollector(lambda: self._pool()))
            ProcessCollector(namespace="lfsd", registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        else:
            self._exposed = CollectorRegistry(auto_describe=True)
            _StartedFilesCollector(self._exposed, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
            self._exposed.register(ServerProcessCollector(os.getppid()))
            PlatformCollector(registry=self._exposed)
            self._pool_gauges = {
                name: Gauge(name, help, registry=r, multiprocess_mode="livesum") for name, help in POOL_GAUGES
            }

    def observe_request(self, route: str, method: str, status: int, seconds: float, sent: int, received: int) -> None:
        """One answered HTTP request: counted, timed, and its body bytes both ways."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route, method),
                self.sent_bytes.labels(route),
            )
            if len(self._request_children) < _BOUND_REQUEST_CHILDREN:
                self._request_children[key] = children
        count, duration, sent_bytes = children
        count.inc()
        duration.observe(seconds)
        sent_bytes.inc(sent)
        if received:  # the series appears with the first body, not at zero for every route
            received_bytes = self._received_children.get(route)
            if received_bytes is None:
                received_bytes = self._received_children[route] = self.received_bytes.labels(route)
            received_bytes.inc(received)

    def declare_storage(self, backend: str, operations: tuple[str, ...] = ("put", "get", "size", "check")) -> None:
        """Show the storage series at zero before the first operation or error."""
        for operation in operations:
            self.storage_duration.labels(backend, operation)
            self.storage_errors.labels(backend, operation)

    def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None:
        """A storage operation (see ``lfsd.storage.instrumented``)."""
        key = (backend, operation)
        duration = self._storage_children.get(key)
        if duration is None:
            duration = self._storage_children[key] = self.storage_duration.labels(backend, operation)
        duration.observe(seconds)
        if failed:
            self.storage_errors.labels(backend, operation).inc()

    def set_stored(self, objects: int, size: int) -> None:
        self.stored_objects.set(objects)
        self.stored_bytes.set(size)

    def watch_pool(self, stats: Callable[[], PoolStats]) -> None:
        self._pool = stats

    def refresh_pool(self) -> None:
        """Multiprocess mode: publish this worker's pool figures (the scrape may land on another worker)."""
        stats = self._pool()
        if self._multiprocess_dir is None or stats is None:
            return
        for name, value in zip(
            (name for name, _ in POOL_GAUGES), (stats.max_open, stats.open, stats.in_use, stats.idle), strict=True
        ):
            self._pool_gauges[name].set(value)

    def exposition(self) -> bytes:
        return generate_latest(self._exposed)


POOL_GAUGES = (
    ("lfsd_db_connections_max_open", "Most connections the pools may open"),
    ("lfsd_db_connections_open", "Connections open (in use and idle)"),
    ("lfsd_db_connections_in_use", "Connections in use"),
    ("lfsd_db_connections_idle", "Idle connections"),
)


class ServerProcessCollector(Collector):
    """CPU, resident memory and open files of the whole server: the supervisor and each of its workers (Linux)."""

    def __init__(self, supervisor: int) -> None:
        self._supervisor = supervisor

    def _pids(self) -> list[int]:
        children = Path(f"/proc/{self._supervisor}/task/{self._supervisor}/children")
        try:
            return [self._supervisor, *(int(pid) for pid in children.read_text().split())]
        except OSError:
            return [os.getpid()]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        cpu = rss = fds = 0.0
        page = os.sysconf("SC_PAGE_SIZE")
        tick = os.sysconf("SC_CLK_TCK")
        pids = self._pids()
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(stat[11]) + int(stat[12])) / tick
                rss += int(stat[21]) * page
                fds += sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
            except (OSError, IndexError, ValueError):
                continue  # a worker that just exited
        yield CounterMetricFamily("lfsd_process_cpu_seconds", "CPU time of all server processes", cpu)
        yield GaugeMetricFamily("lfsd_process_resident_memory_bytes", "Resident memory of all server processes", rss)
        yield GaugeMetricFamily("lfsd_process_open_fds", "Open file descriptors of all server processes", fds)
        yield GaugeMetricFamily("lfsd_server_processes", "Server processes (the supervisor and its workers)", len(pids))


class _StartedFilesCollector(MultiProcessCollector):
    """prometheus_client's multiprocess collector, without the files of workers that are creating theirs right now.

    A worker's value file exists empty for a moment before prometheus_client sizes it, and reading an empty one
    raises ``struct.error``: a worker registering its collector (which collects once) while the other worker made its
    file died at start-up, taking the server down; a scrape at that moment failed. A file of fewer than 4 bytes has
    no values yet."""

    def collect(self) -> Iterable[Metric]:
        files = [path for path in glob.glob(os.path.join(self._path, "*.db")) if _sized(path)]  # noqa: PTH118, PTH207
        return self.merge(files, accumulate=True)  # type: ignore[no-any-return, no-untyped-call]


def _sized(path: str) -> bool:
    try:
        return os.stat(path).st_size >= 4  # noqa: PTH116
    except FileNotFoundError:  # its worker exited and the file was merged away
        return False
