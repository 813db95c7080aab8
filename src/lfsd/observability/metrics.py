"""Every Prometheus metric lfsd exports, defined once, on a registry owned by the application (no globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
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


class Metrics:
    def __init__(self) -> None:
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
            "lfsd_transfers_in_flight", "Object transfers in progress", ["direction"], registry=r
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
        self.locks_held = Gauge("lfsd_locks_held", "File locks held (all repositories)", registry=r)
        for direction in ("upload", "download"):
            self.transfers_in_flight.labels(direction)
        self._pool: Callable[[], PoolStats | None] = lambda: None
        r.register(PoolCollector(lambda: self._pool()))
        ProcessCollector(namespace="lfsd", registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def declare_storage(self, backend: str, operations: tuple[str, ...] = ("put", "get", "size", "check")) -> None:
        """Show the storage series at zero before the first operation or error."""
        for operation in operations:
            self.storage_duration.labels(backend, operation)
            self.storage_errors.labels(backend, operation)

    def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None:
        """A storage operation (see ``lfsd.storage.instrumented``)."""
        self.storage_duration.labels(backend, operation).observe(seconds)
        if failed:
            self.storage_errors.labels(backend, operation).inc()

    def watch_pool(self, stats: Callable[[], PoolStats]) -> None:
        self._pool = stats

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
