"""Geometry of the report's charts: plain data that the templates draw as inline SVG.

Coordinates are computed here, markup lives in ``templates/charts.html``; nothing in this
module produces text that reaches a page unescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH = 480
PLOT_HEIGHT = 150
MARGIN = 28  # room for axis labels
# One-letter CSS classes keep the students x checks heatmap of a large class light.
STATUS_CSS = {"passed": "p", "failed": "f", "blocked": "b", "error": "e"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # axis or row label
    value: str  # the number shown with the bar
    title: str = ""  # tooltip
    css: str = ""


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    horizontal: bool


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str
    href: str
    css: str  # "ok" or "error"


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    points: list[Point]
    left: float  # where the plot starts (percentages are left of it)
    right: float
    line: str  # the polyline's points through the ok attempts
    ticks: list[tuple[float, str, str]]  # x, date label, text-anchor
    grid: list[tuple[float, str]]  # y, percentage label


def histogram(fractions: list[float], bins: int = 10) -> BarChart:
    """How many students scored in each tenth of the maximum (100% falls in the top bin)."""
    counts = [0] * bins
    for fraction in fractions:
        counts[min(int(fraction * bins), bins - 1)] += 1
    top = max(counts, default=0) or 1
    step = (WIDTH - 2 * MARGIN) / bins
    bars = []
    for i, count in enumerate(counts):
        height = PLOT_HEIGHT * count / top
        low, high = 100 * i // bins, 100 * (i + 1) // bins
        bars.append(
            Bar(
                x=MARGIN + i * step + 1,
                y=MARGIN + PLOT_HEIGHT - height,
                width=step - 2,
                height=height,
                label=f"{low}%",
                value=str(count) if count else "",
                title=f"{count} scored {low}–{high}%",
            )
        )
    return BarChart(WIDTH, PLOT_HEIGHT + 2 * MARGIN, bars, horizontal=False)


ROW = 18
LABEL_WIDTH = 170


def rates(rows: list[tuple[str, str, float]]) -> BarChart:
    """Horizontal bars, one per (label, tooltip, rate between 0 and 1)."""
    span = WIDTH - LABEL_WIDTH - 50
    bars = [
        Bar(
            x=LABEL_WIDTH,
            y=i * ROW + 2,
            width=span * rate,
            height=ROW - 4,
            label=label,
            value=f"{100 * rate:.0f}%",
            title=title,
            css="p" if rate >= 0.75 else "m" if rate >= 0.4 else "f",  # m: middling, not "blocked"
        )
        for i, (label, title, rate) in enumerate(rows)
    ]
    return BarChart(WIDTH, len(rows) * ROW + 4, bars, horizontal=True)


def timeline(attempts: list[tuple[datetime, float | None, str, str]]) -> Timeline:
    """Score over time: (when, fraction of the maximum or None for a failed attempt, tooltip, link)."""
    times = [when.timestamp() for when, *_ in attempts]
    first, last = min(times, default=0.0), max(times, default=0.0)
    left, right = MARGIN + 12, WIDTH - MARGIN
    span = right - left

    def x_of(t: float) -> float:
        return left + (span * (t - first) / (last - first) if last > first else span / 2)

    def y_of(fraction: float) -> float:
        return MARGIN + PLOT_HEIGHT * (1 - fraction)

    points = [
        Point(
            x=round(x_of(t), 1),
            y=round(y_of(fraction or 0.0), 1),
            title=title,
            href=href,
            css="ok" if fraction is not None else "error",
        )
        for t, (_, fraction, title, href) in zip(times, attempts, strict=True)
    ]
    line = " ".join(f"{p.x},{p.y}" for p in points if p.css == "ok")
    ends = sorted({attempts[0][0], attempts[-1][0]}) if attempts else []
    anchors = ["middle"] if len(ends) == 1 else ["start", "end"]
    ticks = [
        (round(x_of(when.timestamp()), 1), when.strftime("%Y-%m-%d %H:%M"), anchor)
        for when, anchor in zip(ends, anchors, strict=True)
    ]
    grid = [(y_of(f), f"{100 * f:.0f}%") for f in (0.0, 0.5, 1.0)]
    return Timeline(WIDTH, PLOT_HEIGHT + 2 * MARGIN, points, left, right, line, ticks, grid)
