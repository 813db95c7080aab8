"""Small hand-written SVG charts for the benchmark reports: grouped horizontal bars, no plotting library.

One chart per figure (throughput, CPU, RSS): a row per case, one bar per series (e.g. 1 and 2 workers) in the row,
so a reader sees the shape of the results without reading the numbers (which are printed at each bar's end anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2")
LABEL_WIDTH = 260
BAR_AREA = 380
VALUE_WIDTH = 90
BAR_HEIGHT = 14
GAP = 10


def grouped_bars(
    title: str, unit: str, cases: Sequence[str], series: Sequence[str], values: dict[tuple[str, str], float]
) -> str:
    """An SVG document: for each case, one bar per series that has a value (``values[(case, series)]``)."""
    top = max(values.values(), default=0.0) or 1.0
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    y = 40
    body: list[str] = []
    for case in cases:
        present = [name for name in series if (case, name) in values]
        if not present:
            continue
        group_height = len(present) * BAR_HEIGHT
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + group_height / 2 + 4:.0f}" text-anchor="end">{escape(case)}</text>'
        )
        for name in present:
            value = values[(case, name)]
            colour = COLOURS[series.index(name) % len(COLOURS)]
            length = max(1.0, BAR_AREA * value / top)
            body.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT - 2}" fill="{colour}">'
                f"<title>{escape(case)}, {escape(name)}: {value:.2f} {escape(unit)}</title></rect>"
            )
            body.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + BAR_HEIGHT - 3}">{value:.2f}</text>')
            y += BAR_HEIGHT
        y += GAP
    legend_x = LABEL_WIDTH
    legend: list[str] = []
    for i, name in enumerate(series):
        legend.append(f'<rect x="{legend_x}" y="{y + 4}" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>')
        legend.append(f'<text x="{legend_x + 14}" y="{y + 13}">{escape(name)}</text>')
        legend_x += 14 + 8 * len(name) + 16
    height = y + 24
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
            '<rect width="100%" height="100%" fill="white"/>',
            f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)} ({escape(unit)})</text>',
            *body,
            *legend,
            "</svg>",
            "",
        ]
    )
