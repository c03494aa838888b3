"""How a dashboard page presents its tiles, beyond the chart itself.

A KPI tile says what it compares, in words ("1 Dec – 3 Dec vs 1 Nov – 3 Nov (8)"), with the
change as an arrow and a percentage under the number. The change is drawn in a neutral
colour: a rise is good news for new patients and bad news for complaints, and a report
does not say which way is better (its chart has no such setting yet), so the page does not
colour it as good or bad. A change under ``SMALL_CHANGE`` per cent reads "about the same"
(≈) rather than as a rise or a fall.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from formloom.engines.reports.charts import number
from formloom.platform.reports import periods
from formloom.platform.reports.service import Ran, chart_text, total_of

#: Changes smaller than this (in per cent) are shown as about the same.
SMALL_CHANGE = 5.0


def kpi_comparison(ran: Ran, locale: str) -> dict[str, Any] | None:
    """What a KPI tile says under its number, or None for other tiles."""
    if ran.chart is None or ran.chart.type != "kpi" or ran.kpi_windows is None:
        return None
    measure = ran.chart.measure or ran.spec.measures[0].key
    value = total_of(ran.result, measure)
    previous = ran.kpi_previous
    text = chart_text(locale)
    change = None
    if value is not None and previous not in (None, 0):
        assert previous is not None
        change = 100 * (value - previous) / abs(previous)
    if change is None:
        delta, tone = "", "none"
    elif abs(change) < SMALL_CHANGE:
        delta, tone = f"≈ {abs(change):.1f}%", "flat"
    else:
        rise = change > 0
        delta, tone = f"{'▲' if rise else '▼'} {abs(change):.1f}%", "up" if rise else "down"
    return {
        "delta": delta,
        "tone": tone,
        "words": periods.compared(ran.kpi_windows, locale),
        "previous": number(previous, text),
    }


def kpi_alone(ran: Ran) -> Ran:
    """The KPI without its comparison, for a chart whose tile says the comparison itself."""
    return replace(ran, kpi_previous=None)
