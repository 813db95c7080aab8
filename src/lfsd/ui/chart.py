"""Stored bytes and object count over time, drawn as an SVG on the server: no script, no inline style.

A pure function of the history, so it is tested by itself. Two lines share the time axis: bytes (left scale) and
objects (right scale), each scaled to its own maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

WIDTH = 640
HEIGHT = 200
PAD = 40


def human_bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _points(values: Sequence[int], top: int) -> str:
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(1, len(values) - 1)
    return " ".join(
        f"{PAD + i * step:.1f},{PAD + inner_h - (value / top if top else 0) * inner_h:.1f}"
        for i, value in enumerate(values)
    )


def usage_chart(history: Sequence[tuple[date, int, int]], *, title: str = "Stored bytes and objects") -> str:
    """An accessible SVG (``role="img"`` with a title and a text summary) of ``(day, objects, bytes)``, oldest
    first. An empty history gives a chart that says so."""
    label = escape(title)
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{label}</title>'
    )
    if not history:
        return (
            head + '<desc id="chart-desc">No history recorded yet.</desc>'
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" class="chart-empty">'
            "No history recorded yet</text></svg>"
        )
    days = [day for day, _, _ in history]
    objects = [count for _, count, _ in history]
    sizes = [size for _, _, size in history]
    top_bytes, top_objects = max(sizes), max(objects)
    summary = (
        f"From {days[0].isoformat()} to {days[-1].isoformat()}: {objects[-1]} objects, "
        f"{human_bytes(sizes[-1])} (at most {top_objects} objects, {human_bytes(top_bytes)})."
    )
    bottom = HEIGHT - PAD
    parts = [
        head,
        f'<desc id="chart-desc">{escape(summary)}</desc>',
        f'<line class="chart-axis" x1="{PAD}" y1="{bottom}" x2="{WIDTH - PAD}" y2="{bottom}"/>',
        f'<polyline class="chart-bytes" fill="none" points="{_points(sizes, top_bytes)}"/>',
        f'<polyline class="chart-objects" fill="none" points="{_points(objects, top_objects)}"/>',
        f'<text class="chart-label" x="{PAD}" y="{PAD - 8}">{escape(human_bytes(top_bytes))}</text>',
        f'<text class="chart-label" x="{WIDTH - PAD}" y="{PAD - 8}" text-anchor="end">{top_objects} objects</text>',
        f'<text class="chart-label" x="{PAD}" y="{bottom + 16}">{days[0].isoformat()}</text>',
        f'<text class="chart-label" x="{WIDTH - PAD}" y="{bottom + 16}" text-anchor="end">'
        f"{days[-1].isoformat()}</text>",
        "</svg>",
    ]
    return "".join(parts)
