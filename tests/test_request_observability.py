"""The per-request metrics and log line, made cheaper (issue 17), say what they said before."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from prometheus_client import generate_latest

from lfsd.observability.logs import JsonFormatter, TextFormatter, write_json_line
from lfsd.observability.metrics import _BOUND_REQUEST_CHILDREN, Metrics


def _sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_observe_request_counts_times_and_adds_bytes() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.observe_request("/{repo}/info/lfs/objects/{oid}", "GET", 200, 0.002, 100, 0)
    metrics.observe_request("/{repo}/info/lfs/objects/{oid}", "PUT", 200, 0.004, 0, 70)
    labels = {"route": "/{repo}/info/lfs/objects/{oid}"}
    assert _sample(metrics, "lfsd_http_requests_total", {**labels, "method": "GET", "status": "200"}) == 3
    assert _sample(metrics, "lfsd_http_requests_total", {**labels, "method": "PUT", "status": "200"}) == 1
    assert _sample(metrics, "lfsd_http_request_duration_seconds_count", {**labels, "method": "GET"}) == 3
    assert _sample(metrics, "lfsd_http_sent_bytes_total", labels) == 300
    assert _sample(metrics, "lfsd_http_received_bytes_total", labels) == 70


def test_a_route_without_request_bodies_has_no_received_series() -> None:
    metrics = Metrics()
    metrics.observe_request("/healthz", "GET", 200, 0.001, 2, 0)
    assert b'lfsd_http_received_bytes_total{route="/healthz"}' not in generate_latest(metrics.registry)


def test_the_bound_children_are_bounded_and_still_counted_past_the_bound() -> None:
    metrics = Metrics()
    for n in range(_BOUND_REQUEST_CHILDREN + 10):
        metrics.observe_request("unmatched", f"M{n}", 405, 0.001, 0, 0)
    assert len(metrics._request_children) == _BOUND_REQUEST_CHILDREN
    last = f"M{_BOUND_REQUEST_CHILDREN + 9}"
    metrics.observe_request("unmatched", last, 405, 0.001, 0, 0)
    assert _sample(metrics, "lfsd_http_requests_total", {"route": "unmatched", "method": last, "status": "405"}) == 2


def test_the_json_timestamp_is_datetimes_own_millisecond_isoformat() -> None:
    formatter = JsonFormatter()
    base = 1_790_000_000
    # Fractions that round up to the next second, sit on a millisecond edge, or repeat a second already formatted.
    for created in (
        base + 0.9999996,
        base + 0.9995,
        base + 0.0004999,
        float(base),
        base + 0.25,
        base + 1.5,
        base + 0.7,
    ):
        record = logging.LogRecord("lfsd.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
        record.created = created
        entry = json.loads(formatter.format(record))
        assert entry["ts"] == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert entry["message"] == "GET /x"


FIELDS: dict[str, object] = {
    "request_id": "0123456789abcdef0123456789abcdef",
    "method": "GET",
    "route": "/{repo}/info/lfs/objects/{oid}",
    "repo": 'acme/x\r\n"quoted" é \u2028',
    "status": 200,
    "bytes_in": 0,
    "bytes_out": 102400,
    "duration_s": 0.000123,
    "user": "",
    "user_agent": "git-lfs/3.4.1",
    "remote": "127.0.0.1",
}


class _Tree:
    """A logger of its own under a root of its own, set up as ``configure`` sets up the real ones for json."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.root = logging.RootLogger(logging.INFO)
        manager = logging.Manager(self.root)
        self.root.manager = manager
        self.logger = manager.getLogger("lfsd.access")
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.root.addHandler(self.handler)

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


def _without_ts(entry: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in entry.items() if key != "ts"}


def test_the_direct_json_line_is_the_formatters_line() -> None:
    tree = _Tree()
    assert write_json_line(tree.logger, logging.INFO, "GET /{repo}/info/lfs/objects/{oid} 200", FIELDS)
    tree.logger.info("%s %s %s", "GET", "/{repo}/info/lfs/objects/{oid}", 200, extra=FIELDS)
    direct, logged = tree.lines()
    assert list(direct) == list(logged)  # the same fields in the same order
    assert _without_ts(direct) == _without_ts(logged)
    assert direct["level"] == "info" and direct["logger"] == "lfsd.access" and direct["repo"] == FIELDS["repo"]
    formatter = JsonFormatter()
    record = logging.LogRecord("lfsd.access", logging.INFO, __file__, 1, "m", (), None)
    record.__dict__.update(FIELDS)
    assert formatter.line(record.created, "INFO", "lfsd.access", "m", FIELDS) == formatter.format(record)


def test_anything_else_on_the_way_is_left_to_logging() -> None:
    tree = _Tree()
    tree.logger.setLevel(logging.WARNING)
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)  # below the level: nothing to write
    tree.logger.setLevel(logging.NOTSET)
    tree.logger.addFilter(lambda record: True)
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
    tree = _Tree()
    tree.handler.addFilter(lambda record: True)
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
    tree = _Tree()
    tree.root.addHandler(logging.NullHandler())  # a second handler (pytest's caplog is one)
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
    tree = _Tree()
    tree.handler.setFormatter(TextFormatter())
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
    tree = _Tree()
    tree.logger.propagate = False  # no handler reached at all: logging's last resort decides
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
    tree = _Tree()
    tree.stream.close()  # a failing stream: logging meets the error again and reports it its own way
    assert not write_json_line(tree.logger, logging.INFO, "m", FIELDS)
