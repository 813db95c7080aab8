"""``/metrics`` with several workers: every worker's value file merged, whatever state the others' files are in."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from lfsd.observability.metrics import Metrics


def _worker_file(directory: Path, pid: int, value: float) -> None:
    """A value file as a worker's counters leave it (prometheus_client's own format)."""
    values = MmapedDict(str(directory / f"counter_{pid}.db"))  # type: ignore[no-untyped-call]
    try:
        key = mmap_key("lfsd_probe_total", "lfsd_probe_total", [], [], "a counter for the test")
        values.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        values.close()  # type: ignore[no-untyped-call]


def test_a_file_a_starting_worker_has_not_sized_yet_is_skipped(tmp_path: Path) -> None:
    """A worker's file exists empty for a moment before prometheus_client sizes it. Another worker starting then
    (registering the collector collects once) died of it and took the server down; a scrape then failed."""
    _worker_file(tmp_path, 101, 2.0)
    (tmp_path / "counter_102.db").write_bytes(b"")
    _worker_file(tmp_path, 103, 3.0)
    metrics = Metrics(tmp_path)
    assert b"lfsd_probe_total 5.0" in metrics.exposition()
