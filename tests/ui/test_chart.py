"""The usage chart is a pure function: history in, SVG out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

from lfsd.ui.chart import HEIGHT, PAD, WIDTH, human_bytes, usage_chart

SVG = "{http://www.w3.org/2000/svg}"


def _polyline(svg: str, name: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    (line,) = [el for el in root.iter(f"{SVG}polyline") if el.get("class") == name]
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in line.get("points", "").split())]


def test_two_lines_scaled_to_their_own_maximum() -> None:
    start = date(2026, 1, 1)
    history = [
        (start + timedelta(days=i), objects, size) for i, (objects, size) in enumerate([(0, 0), (5, 1024), (10, 4096)])
    ]
    svg = usage_chart(history)
    bytes_line = _polyline(svg, "chart-bytes")
    objects_line = _polyline(svg, "chart-objects")
    assert [x for x, _ in bytes_line] == [PAD, WIDTH / 2, WIDTH - PAD]
    bottom, top = HEIGHT - PAD, PAD
    assert [y for _, y in bytes_line] == [bottom, bottom - (bottom - top) / 4, top]
    assert [y for _, y in objects_line] == [bottom, (bottom + top) / 2, top]
    assert "2026-01-01" in svg and "2026-01-03" in svg
    assert "4.0 KiB" in svg and "10 objects" in svg
    root = ET.fromstring(svg)  # noqa: S314
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None
    assert "style" not in svg  # the CSP allows no inline style: classes only


def test_an_empty_history_says_so() -> None:
    svg = usage_chart([])
    assert "No history recorded yet" in svg
    ET.fromstring(svg)  # noqa: S314 - well-formed


def test_one_day_and_all_zero() -> None:
    svg = usage_chart([(date(2026, 1, 1), 0, 0)])
    assert _polyline(svg, "chart-bytes") == [(PAD, HEIGHT - PAD)]


def test_the_title_is_escaped() -> None:
    svg = usage_chart([], title="<script>alert(1)</script>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(5 * 2**40) == "5.0 TiB"
    assert re.fullmatch(r"\d+\.\d TiB", human_bytes(2**60))
