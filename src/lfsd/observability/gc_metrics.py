"""The garbage collector's metrics, defined once. A run pushes them to a Prometheus Pushgateway (``lfsd gc
--pushgateway``): a CronJob's pod is gone before any scrape, which is what the Pushgateway is for."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from lfsd.core.gc import GcReport


class GcMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("lfsd_gc_runs", "Garbage collection runs that finished", registry=r)
        self.objects = Counter("lfsd_gc_objects_reclaimed", "Objects deleted by garbage collection", registry=r)
        self.bytes = Counter("lfsd_gc_bytes_reclaimed", "Bytes deleted by garbage collection", registry=r)
        self.duration = Gauge("lfsd_gc_duration_seconds", "Duration of the last garbage collection run", registry=r)
        self.last_success = Gauge(
            "lfsd_gc_last_success_timestamp_seconds", "When the last garbage collection run finished", registry=r
        )

    def gc_finished(self, report: GcReport) -> None:
        self.runs.inc()
        self.objects.inc(report.objects)
        self.bytes.inc(report.bytes)
        self.duration.set(report.seconds)
        self.last_success.set_to_current_time()
