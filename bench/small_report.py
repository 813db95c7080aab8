"""bench/small.py's figures: one measured case (``Figure``), the medians and spreads of its repetitions
(``Summary``), and how they are printed, compared (lfsd against an older tree, against the aiohttp floor) and written
to ``small.json`` and ``small.md``."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from charts import grouped_bars

LFSD = "lfsd"
OLD = "lfsd old"
FLOOR = "aiohttp floor"
DURABLE = "durable floor"  # bench/floor.py --durable: verified, synced and indexed uploads in the fewest steps


@dataclass
class Figure:
    case: str
    workers: int
    objects: int
    seconds: float
    mb_per_s: float
    cpu_ms_per_object: float
    kernel_ms_per_object: float  # the part of cpu_ms_per_object spent in the kernel
    peak_rss_mib: float
    idle_rss_mib: float
    peak_pss_mib: float  # sampled every PSS_SAMPLE seconds during the case (the kernel keeps no PSS high-water mark)
    idle_pss_mib: float
    top_frames: list[tuple[str, float]]
    server: str = LFSD  # LFSD, OLD (the --compare tree) or FLOOR
    # cpu_ms_per_object split between the event loops (each process's main thread) and every other thread
    loop_user_ms_per_object: float = 0.0
    loop_kernel_ms_per_object: float = 0.0
    other_user_ms_per_object: float = 0.0
    other_kernel_ms_per_object: float = 0.0
    load_average: float = 0.0  # the machine's, over the last minute, as the case started: how busy others kept it

    @property
    def label(self) -> str:
        return self.case if self.server == LFSD else f"{self.case}, {self.server}"

    @property
    def loop_ms_per_object(self) -> float:
        return self.loop_user_ms_per_object + self.loop_kernel_ms_per_object

    @property
    def other_ms_per_object(self) -> float:
        return self.other_user_ms_per_object + self.other_kernel_ms_per_object


MEASURED = [f.name for f in fields(Figure) if f.type == "float"]


def threads_line(f: Figure, loop_span: str = "", other_span: str = "") -> str:
    """The second printed line of a case: its CPU split by thread (for medians, with the min-max of each part's
    user + kernel sum)."""
    return (
        f"      event loop {f.loop_user_ms_per_object:4.2f} user + {f.loop_kernel_ms_per_object:4.2f} kernel"
        f"{loop_span}, other threads {f.other_user_ms_per_object:4.2f} user + "
        f"{f.other_kernel_ms_per_object:4.2f} kernel{other_span} (ms/object); load {f.load_average:.1f}"
    )


@dataclass
class Summary:
    """The repetitions of one case on one server: every field the median of the runs (the top frames the first
    run's), with the runs kept for their spread."""

    median: Figure
    runs: list[Figure]

    def spread(self, name: str) -> tuple[float, float]:
        values = [getattr(run, name) for run in self.runs]
        return min(values), max(values)

    def span(self, name: str, digits: int = 2) -> str:
        low, high = self.spread(name)
        return f"{low:.{digits}f}–{high:.{digits}f}"

    def json(self) -> dict[str, Any]:
        """The single run's fields (as medians), plus the repetitions, each field's [min, max] and every run."""
        return {
            **asdict(self.median),
            "repeats": len(self.runs),
            "spread": {name: list(self.spread(name)) for name in MEASURED},
            "runs": [{name: getattr(run, name) for name in MEASURED} for run in self.runs],
        }


def summarize(figures: Iterable[Figure]) -> list[Summary]:
    """One summary per server, case and worker count, in the order they first ran."""
    groups: dict[tuple[str, str, int], list[Figure]] = {}
    for figure in figures:
        groups.setdefault((figure.server, figure.case, figure.workers), []).append(figure)
    return [
        Summary(
            replace(runs[0], **{name: statistics.median(getattr(r, name) for r in runs) for name in MEASURED}), runs
        )
        for runs in groups.values()
    ]


def median_lines(summaries: list[Summary]) -> list[str]:
    lines = []
    for s in summaries:
        m = s.median
        lines += [
            f"  {m.label:<40} {m.mb_per_s:6.1f} MB/s [{s.span('mb_per_s', 1)}]  "
            f"cpu {m.cpu_ms_per_object:5.2f} ms/object [{s.span('cpu_ms_per_object')}] "
            f"(kernel {m.kernel_ms_per_object:4.2f} [{s.span('kernel_ms_per_object')}])  "
            f"peak RSS {m.peak_rss_mib:6.1f} MiB, PSS {m.peak_pss_mib:6.1f}",
            threads_line(m, f" (sum {s.span('loop_ms_per_object')})", f" (sum {s.span('other_ms_per_object')})"),
        ]
    return lines


def _pairs(summaries: list[Summary], other: str) -> list[tuple[Summary, Summary]]:
    """lfsd's summaries with the same case and worker count on the server ``other``."""
    by_key = {(s.median.case, s.median.workers): s for s in summaries if s.median.server == other}
    return [
        (s, by_key[(s.median.case, s.median.workers)])
        for s in summaries
        if s.median.server == LFSD and (s.median.case, s.median.workers) in by_key
    ]


def _paired_ratio(new: Summary, old: Summary, name: str) -> str:
    """The median of the repetitions' ratios new/old of ``name``, [min-max]: repetition i of both trees ran back to
    back, so a pair shares the machine's load of the moment, which drifts over a run more than the trees differ."""
    ratios = [
        getattr(n, name) / getattr(o, name)
        for n, o in zip(new.runs, old.runs, strict=False)
        # Below 0.05 ms per object (5 clock ticks over 1000 objects) a ratio says nothing.
        if getattr(o, name) >= 0.05
    ]
    if not ratios:
        return "–"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}"
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]"


def compare_rows(summaries: list[Summary]) -> list[list[str]]:
    """lfsd against the older tree: CPU per object (median [min-max]), and the ratios new/old of the CPU, of its
    event-loop and other-thread parts and of the wall time."""
    rows = []
    for new, old in _pairs(summaries, OLD):
        n, o = new.median, old.median
        rows.append(
            [
                n.case,
                str(n.workers),
                f"{n.cpu_ms_per_object:.2f} [{new.span('cpu_ms_per_object')}]",
                f"{o.cpu_ms_per_object:.2f} [{old.span('cpu_ms_per_object')}]",
                _paired_ratio(new, old, "cpu_ms_per_object"),
                _paired_ratio(new, old, "loop_ms_per_object"),
                _paired_ratio(new, old, "other_ms_per_object"),
                _paired_ratio(new, old, "seconds"),
            ]
        )
    return rows


COMPARE_HEADER = [
    "case",
    "workers",
    "new CPU ms/object [min–max]",
    "old CPU ms/object [min–max]",
    "new/old CPU [min–max]",
    "new/old event loop",
    "new/old other threads",
    "new/old wall time",
]


def floor_rows(summaries: list[Summary], floor_server: str = FLOOR) -> list[list[str]]:
    """lfsd against a floor (``FLOOR`` or ``DURABLE``) for the same requests: what is left is lfsd's own CPU per
    object, in all and in the event loop."""
    rows = []
    for lfsd, floor in _pairs(summaries, floor_server):
        n, f = lfsd.median, floor.median
        own = n.cpu_ms_per_object - f.cpu_ms_per_object
        rows.append(
            [
                n.case,
                str(n.workers),
                f"{n.cpu_ms_per_object:.2f} [{lfsd.span('cpu_ms_per_object')}]",
                f"{f.cpu_ms_per_object:.2f} [{floor.span('cpu_ms_per_object')}]",
                f"{own:.2f} ({100 * own / n.cpu_ms_per_object:.0f} %)" if n.cpu_ms_per_object else "–",
                f"{n.loop_ms_per_object:.2f} / {f.loop_ms_per_object:.2f}",
                f"{n.other_ms_per_object:.2f} / {f.other_ms_per_object:.2f}",
            ]
        )
    return rows


FLOOR_HEADER = [
    "case",
    "workers",
    "lfsd CPU ms/object [min–max]",
    "floor CPU ms/object [min–max]",
    "lfsd's own (share)",
    "event loop lfsd / floor",
    "other threads lfsd / floor",
]


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def report(summaries: list[Summary], out: Path) -> str:
    """A short Markdown report with SVG charts beside it in ``out`` (throughput, CPU per object, peak RSS)."""
    repeats = max((len(s.runs) for s in summaries), default=1)
    lines = [
        "# lfsd small objects (1000 x 100 KiB)",
        "",
        "Targets (issue 17): server CPU <= 0.9 ms per uploaded object, <= 0.35 ms per downloaded one; "
        "peak RSS < 100 MiB, idle < 60 MiB: with one worker the process's RSS; with several, the PSS sum (the RSS sum "
        "counts the pages the workers share once per worker).",
        "",
        f"Medians of {repeats} interleaved repetition(s), [min–max] beside the CPU; the CPU split between the event "
        "loops (each process's main thread) and the other threads, user and kernel, in ms per object; the machine's "
        "load average (1 minute) as the cases started, min–max.",
        "",
        "| server | case | workers | MB/s | CPU ms/object | min–max | of which kernel | event loop user | "
        "event loop kernel | other threads user | other threads kernel | peak RSS MiB | idle RSS MiB | peak PSS MiB "
        "| idle PSS MiB | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        f = s.median
        lines.append(
            f"| {f.server} | {f.case} | {f.workers} | {f.mb_per_s:.1f} | {f.cpu_ms_per_object:.2f} "
            f"| {s.span('cpu_ms_per_object')} | {f.kernel_ms_per_object:.2f} | {f.loop_user_ms_per_object:.2f} "
            f"| {f.loop_kernel_ms_per_object:.2f} | {f.other_user_ms_per_object:.2f} "
            f"| {f.other_kernel_ms_per_object:.2f} | {f.peak_rss_mib:.1f} | {f.idle_rss_mib:.1f} "
            f"| {f.peak_pss_mib:.1f} | {f.idle_pss_mib:.1f} | {s.span('load_average', 1)} |"
        )
    if compared := compare_rows(summaries):
        lines += [
            "",
            "## Against the older tree",
            "",
            "Ratios new/old: the median of the repetitions' ratios (repetition i of both trees ran back to back).",
            "",
            *markdown_table(COMPARE_HEADER, compared),
        ]
    if floored := floor_rows(summaries):
        lines += ["", "## Against the aiohttp floor (bench/floor.py)", "", *markdown_table(FLOOR_HEADER, floored)]
    if floored := floor_rows(summaries, DURABLE):
        lines += [
            "",
            "## Against the durable floor (bench/floor.py --durable: hash, write, syncs, link, a SQLite commit)",
            "",
            *markdown_table(FLOOR_HEADER, floored),
        ]
    medians = [s.median for s in summaries]
    charts: list[tuple[str, str, Callable[[Figure], float], str]] = [
        ("small-throughput.svg", "throughput", lambda f: f.mb_per_s, "MB/s"),
        ("small-cpu.svg", "server CPU per object", lambda f: f.cpu_ms_per_object, "ms"),
        ("small-rss.svg", "server peak RSS", lambda f: f.peak_rss_mib, "MiB"),
    ]
    cases = list(dict.fromkeys(f.label for f in medians))
    series = [f"{n} worker(s)" for n in sorted({f.workers for f in medians})]
    for name, title, value, unit in charts:
        values = {(f.label, f"{f.workers} worker(s)"): value(f) for f in medians}
        (out / name).write_text(grouped_bars(title, unit, cases, series, values))
        lines += ["", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"
