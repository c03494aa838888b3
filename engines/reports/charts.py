"""SVG charts drawn on the server from a pivot result: bar (grouped or stacked), line, pie
or donut, funnel, and a KPI number compared with the previous period.

Pure functions from data to SVG text — no browser, no JavaScript, no fonts fetched. Every
chart is accessible: ``role="img"`` with a ``<title>`` and a ``<desc>`` that reads the data
out, axis labels, and a ``<title>`` on every bar, point and slice, which browsers show on
hover and screen readers announce. Labels come in the caller's locale (the caller passes
translated texts, and ``ChartText`` carries the few words a chart writes itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal

ChartType = Literal["bar", "stacked_bar", "line", "pie", "donut", "funnel", "kpi"]
CHART_TYPES: tuple[ChartType, ...] = (
    "bar",
    "stacked_bar",
    "line",
    "pie",
    "donut",
    "funnel",
    "kpi",
)

#: Colour-blind-safe palette (Okabe–Ito), then darker shades for more series.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#004C7A", "#9C6B00", "#006B4E", "#8A5171",
)  # fmt: skip

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 56, 72
FONT = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans', 'PingFang SC', sans-serif"


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class ChartData:
    """Categories (x axis, slices, funnel stages) and one or more series of values."""

    categories: list[str]
    series: list[Series]


@dataclass(frozen=True)
class ChartText:
    """The words a chart writes itself, in the reader's locale."""

    no_data: str = "No data"
    previous: str = "previous period"
    total: str = "Total"
    decimal_mark: str = "."
    thousands: str = ","


@dataclass(frozen=True)
class Chart:
    type: ChartType
    title: str
    data: ChartData
    x_label: str = ""
    y_label: str = ""
    text: ChartText = field(default_factory=ChartText)
    #: KPI only: the value of the previous period, to compare with.
    previous: float | None = None
    #: (category index, series index) -> URL opened by clicking that bar, point or slice
    #: (the drill-down to the records behind it).
    links: dict[tuple[int, int], str] = field(default_factory=dict)


def _linked(chart: Chart, category: int, series: int, element: str) -> str:
    href = chart.links.get((category, series))
    return f'<a href="{_e(href)}">{element}</a>' if href else element


def number(value: float | None, text: ChartText = ChartText()) -> str:
    """``1234567.891`` -> ``1,234,567.89``; integers without decimals; None -> ``–``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    rounded = round(float(value), 2)
    whole = rounded == int(rounded)
    formatted = f"{int(rounded):,}" if whole else f"{rounded:,.2f}".rstrip("0").rstrip(".")
    return (
        formatted.replace(",", "\x00")
        .replace(".", text.decimal_mark)
        .replace("\x00", text.thousands)
    )


def _e(text: str) -> str:
    return escape(text, quote=True)


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above ``value``: 1, 2, 2.5, 5 or 10 times a power of 10."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    fraction = value / power
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if fraction <= step:
            return step * power
    return 10.0 * power


def _open(chart: Chart, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        f'font-family="{_e(FONT)}" font-size="12" class="fl-chart fl-chart-{chart.type}">',
        f'<title id="chart-title">{_e(chart.title)}</title>',
        f'<desc id="chart-desc">{_e(description)}</desc>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="600">{_e(chart.title)}</text>',
    ]


def _describe(chart: Chart) -> str:
    parts = []
    for series in chart.data.series:
        pairs = ", ".join(
            f"{category}: {number(value, chart.text)}"
            for category, value in zip(chart.data.categories, series.values, strict=False)
        )
        parts.append(f"{series.name}: {pairs}" if len(chart.data.series) > 1 else pairs)
    return "; ".join(parts) or chart.text.no_data


def _empty(chart: Chart) -> str:
    lines = _open(chart, chart.text.no_data)
    lines.append(
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">'
        f"{_e(chart.text.no_data)}</text></svg>"
    )
    return "\n".join(lines)


def _has_values(data: ChartData) -> bool:
    return bool(data.categories) and any(
        v is not None for series in data.series for v in series.values
    )


def _legend(series: Sequence[Series], y: float) -> list[str]:
    if len(series) < 2:
        return []
    out, x = [], MARGIN_LEFT
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        out.append(
            f'<g class="legend-item"><rect x="{x}" y="{y - 9}" width="10" height="10" '
            f'fill="{colour}"/><text x="{x + 14}" y="{y}">{_e(item.name)}</text></g>'
        )
        x += 24 + 7 * len(item.name)
    return out


@dataclass(frozen=True)
class _Scale:
    """Maps values to y: ``low`` (≤ 0) at the bottom of the plot, ``high`` (≥ 0) at its top."""

    low: float
    high: float
    bottom: float
    height: float

    def y(self, value: float) -> float:
        return self.bottom - self.height * (value - self.low) / (self.high - self.low)


def _range(values: Sequence[float]) -> tuple[float, float, float]:
    """Round axis limits covering ``values`` and zero, and the tick step (5 steps or so)."""
    high = max(max(values, default=0), 0)
    low = min(min(values, default=0), 0)
    step = _nice_ceiling((high - low) / 5) if high > low else 1.0
    return math.floor(low / step) * step, math.ceil(high / step) * step or step, step


def _axes(chart: Chart, limits: tuple[float, float, float]) -> tuple[list[str], float, _Scale]:
    """The y axis with a tick every step from low to high, and a line at zero; returns the
    lines, the plot's left edge and the scale."""
    low, top, step = limits
    left, bottom = MARGIN_LEFT, HEIGHT - MARGIN_BOTTOM
    plot_height = bottom - MARGIN_TOP
    scale = _Scale(low, top, bottom, plot_height)
    out = ['<g class="axis y-axis" fill="#444">']
    for tick in range(round((top - low) / step) + 1):
        value = low + step * tick
        y = scale.y(value)
        out.append(
            f'<line x1="{left}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(number(value, chart.text))}</text>"
        )
    out.append("</g>")
    zero = scale.y(0)
    out.append(
        f'<line class="zero" x1="{left}" x2="{WIDTH - MARGIN_RIGHT}" y1="{zero:.1f}" '
        f'y2="{zero:.1f}" stroke="#444"/>'
    )
    if chart.y_label:
        out.append(
            f'<text class="axis-label" transform="translate(14 {MARGIN_TOP + plot_height / 2}) '
            f'rotate(-90)" text-anchor="middle">{_e(chart.y_label)}</text>'
        )
    if chart.x_label:
        out.append(
            f'<text class="axis-label" x="{left + (WIDTH - MARGIN_RIGHT - left) / 2}" '
            f'y="{HEIGHT - 8}" text-anchor="middle">{_e(chart.x_label)}</text>'
        )
    return out, left, scale


def _category_labels(categories: Sequence[str], x_of: Sequence[float], bottom: float) -> list[str]:
    rotate = len(categories) > 8 or max((len(c) for c in categories), default=0) > 10
    out = []
    for category, x in zip(categories, x_of, strict=True):
        label = category if len(category) <= 18 else category[:17] + "…"
        if rotate:
            out.append(
                f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {bottom + 14})">{_e(label)}</text>'
            )
        else:
            out.append(
                f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_e(label)}</text>'
            )
    return out


def _bars(chart: Chart, stacked: bool) -> str:
    data = chart.data
    extremes: list[float] = []
    for i in range(len(data.categories)):
        values = [s.values[i] or 0 for s in data.series]
        if stacked:
            extremes += [sum(v for v in values if v > 0), sum(v for v in values if v < 0)]
        else:
            extremes += values
    lines = _open(chart, _describe(chart))
    axis, left, scale = _axes(chart, _range(extremes))
    bottom = scale.bottom
    lines += axis
    slot = (WIDTH - MARGIN_RIGHT - left) / len(data.categories)
    groups = 1 if stacked else len(data.series)
    bar = max(2.0, slot * 0.7 / groups)
    centres = []
    for i, category in enumerate(data.categories):
        start = left + slot * i + (slot - bar * groups) / 2
        centres.append(left + slot * i + slot / 2)
        above, below = 0.0, 0.0  # stacked: what is already piled up on each side of zero
        lines.append(f'<g class="category" data-index="{i}">')
        for j, series in enumerate(data.series):
            value = series.values[i]
            if value is None:
                continue
            x = start if stacked else start + bar * j
            base = (above if value >= 0 else below) if stacked else 0.0
            y1, y2 = scale.y(base), scale.y(base + value)
            y, height = min(y1, y2), abs(y1 - y2)
            name = f"{series.name} · " if len(data.series) > 1 else ""
            lines.append(
                _linked(
                    chart,
                    i,
                    j,
                    f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                    f'height="{height:.1f}" fill="{PALETTE[j % len(PALETTE)]}" '
                    f'data-category="{i}" data-series="{j}" tabindex="0">'
                    f"<title>{_e(name + category)}: {_e(number(value, chart.text))}</title></rect>",
                )
            )
            if stacked and value >= 0:
                above += value
            elif stacked:
                below += value
        lines.append("</g>")
    lines += _category_labels(data.categories, centres, bottom)
    lines += _legend(data.series, MARGIN_TOP - 14)
    lines.append("</svg>")
    return "\n".join(lines)


def _line(chart: Chart) -> str:
    data = chart.data
    values = [v for s in data.series for v in s.values if v is not None]
    lines = _open(chart, _describe(chart))
    axis, left, scale = _axes(chart, _range(values))
    bottom = scale.bottom
    lines += axis
    count = len(data.categories)
    step = (WIDTH - MARGIN_RIGHT - left) / max(count, 1)
    xs = [left + step * (i + 0.5) for i in range(count)]
    for j, series in enumerate(data.series):
        colour = PALETTE[j % len(PALETTE)]
        points = [(xs[i], scale.y(v)) for i, v in enumerate(series.values) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        lines.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        for i, value in enumerate(series.values):
            if value is None:
                continue
            y = scale.y(value)
            name = f"{series.name} · " if len(data.series) > 1 else ""
            lines.append(
                _linked(
                    chart,
                    i,
                    j,
                    f'<circle class="point" cx="{xs[i]:.1f}" cy="{y:.1f}" r="4" fill="{colour}" '
                    f'data-category="{i}" data-series="{j}" tabindex="0"><title>'
                    f"{_e(name + data.categories[i])}: {_e(number(value, chart.text))}"
                    "</title></circle>",
                )
            )
    lines += _category_labels(data.categories, xs, bottom)
    lines += _legend(data.series, MARGIN_TOP - 14)
    lines.append("</svg>")
    return "\n".join(lines)


def _pie(chart: Chart, hole: float) -> str:
    series = chart.data.series[0]
    slices = [
        (category, value)
        for category, value in zip(chart.data.categories, series.values, strict=False)
        if value is not None and value > 0
    ]
    total = sum(value for _, value in slices)
    if total <= 0:
        return _empty(chart)
    lines = _open(chart, _describe(chart))
    cx, cy, radius = 200.0, HEIGHT / 2 + 12, 120.0
    angle = -math.pi / 2
    for index, (category, value) in enumerate(slices):
        sweep = 2 * math.pi * value / total
        colour = PALETTE[index % len(PALETTE)]
        share = f"{100 * value / total:.1f}%"
        tip = f"<title>{_e(category)}: {_e(number(value, chart.text))} ({share})</title>"
        position = chart.data.categories.index(category)
        if len(slices) == 1:
            shape = f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{colour}"'
        else:
            end = angle + sweep
            x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x2, y2 = cx + radius * math.cos(end), cy + radius * math.sin(end)
            large = 1 if sweep > math.pi else 0
            shape = (
                f'<path d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} '
                f'A{radius},{radius} 0 {large} 1 {x2:.1f},{y2:.1f} Z" fill="{colour}"'
            )
        lines.append(
            _linked(
                chart,
                position,
                0,
                f'{shape} class="slice" stroke="#fff" data-category="{position}" '
                f'data-series="0" tabindex="0">{tip}</{"circle" if len(slices) == 1 else "path"}>',
            )
        )
        legend_y = MARGIN_TOP + 20 + 20 * index
        lines.append(
            f'<rect x="360" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>'
            f'<text x="378" y="{legend_y}">{_e(category)} — {_e(number(value, chart.text))} '
            f"({share})</text>"
        )
        angle += sweep
    if hole > 0:
        lines.append(f'<circle cx="{cx}" cy="{cy}" r="{radius * hole:.1f}" fill="#fff"/>')
        lines.append(
            f'<text x="{cx}" y="{cy + 5}" text-anchor="middle" font-size="16" '
            f'font-weight="600">{_e(number(total, chart.text))}</text>'
        )
    lines.append("</svg>")
    return "\n".join(lines)


def _funnel(chart: Chart) -> str:
    series = chart.data.series[0]
    stages = list(zip(chart.data.categories, series.values, strict=False))
    first = next((v for _, v in stages if v), None)
    widest = max((v or 0 for _, v in stages), default=0)
    lines = _open(chart, _describe(chart))
    height = (HEIGHT - MARGIN_TOP - 16) / max(len(stages), 1)
    for index, (stage, value) in enumerate(stages):
        width = (WIDTH - 240) * (value or 0) / widest if widest else 0
        x = (WIDTH - width) / 2
        y = MARGIN_TOP + index * height
        share = f" ({100 * (value or 0) / first:.0f}%)" if first else ""
        lines.append(
            _linked(
                chart,
                index,
                0,
                f'<rect class="stage" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{height - 6:.1f}" fill="{PALETTE[0]}" opacity="{1 - index * 0.08:.2f}" '
                f'data-category="{index}" data-series="0" tabindex="0"><title>{_e(stage)}: '
                f"{_e(number(value, chart.text))}{share}</title></rect>",
            )
        )
        lines.append(
            f'<text x="{WIDTH / 2}" y="{y + height / 2 + 1:.1f}" text-anchor="middle" '
            f'fill="#fff" stroke="#00000066" stroke-width="0.3">{_e(stage)}: '
            f"{_e(number(value, chart.text))}{share}</text>"
        )
    lines.append("</svg>")
    return "\n".join(lines)


def _kpi(chart: Chart) -> str:
    values = chart.data.series[0].values if chart.data.series else []
    value = values[-1] if values else None
    previous = chart.previous
    change = None
    if value is not None and previous not in (None, 0):
        assert previous is not None
        change = 100 * (value - previous) / abs(previous)
    description = f"{chart.title}: {number(value, chart.text)}"
    if previous is not None:
        description += f"; {chart.text.previous}: {number(previous, chart.text)}"
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 160" width="320" '
        f'height="160" role="img" aria-labelledby="chart-title chart-desc" '
        f'font-family="{_e(FONT)}" class="fl-chart fl-chart-kpi">',
        f'<title id="chart-title">{_e(chart.title)}</title>',
        f'<desc id="chart-desc">{_e(description)}</desc>',
        f'<text x="16" y="30" font-size="14" fill="#444">{_e(chart.title)}</text>',
        f'<text class="kpi-value" x="16" y="92" font-size="44" font-weight="700">'
        f"{_e(number(value, chart.text))}</text>",
    ]
    if change is not None:
        up = change >= 0
        arrow, colour = ("▲", "#007A3D") if up else ("▼", "#B00020")
        lines.append(
            f'<text class="kpi-change" x="16" y="130" font-size="14" fill="{colour}">'
            f'{arrow} {abs(change):.1f}% <tspan fill="#666">'
            f"{_e(chart.text.previous)}: {_e(number(previous, chart.text))}</tspan></text>"
        )
    lines.append("</svg>")
    return "\n".join(lines)


def render_svg(chart: Chart) -> str:
    """The chart as a standalone SVG document (text)."""
    if chart.type == "kpi":
        return _kpi(chart)
    if not _has_values(chart.data):
        return _empty(chart)
    if chart.type in ("bar", "stacked_bar"):
        return _bars(chart, stacked=chart.type == "stacked_bar")
    if chart.type == "line":
        return _line(chart)
    if chart.type in ("pie", "donut"):
        return _pie(chart, hole=0.55 if chart.type == "donut" else 0.0)
    return _funnel(chart)
