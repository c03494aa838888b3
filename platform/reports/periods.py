"""The two windows a KPI compares: this period so far against the same stretch of the last.

A KPI with ``period: month`` on 3 December (the clinic's clock) counts 1 to 3 December and
compares it with 1 to 3 November — like with like — never with the whole of November. The
same for a week (Monday to today against last Monday to the same weekday), a quarter and a
year; a day is today against yesterday. A day the previous period does not have falls back
to its last day (31 March against 1–28 February: the whole of February). The windows are
whole days on the clinic's clock, today included (so before closing time today is partly
over while its match is a whole day: the price of windows that read as dates), for date
and datetime fields alike.

The windows are named in words for people ("1 Dec – 3 Dec vs 1 Nov – 3 Nov",
"12月1日–3日 对比 11月1日–3日"), with the year when the two are in different years.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def period_start(day: date, period: str) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def shift(start: date, period: str, steps: int) -> date:
    """The start of the period ``steps`` periods away from the one starting at ``start``."""
    if period == "day":
        return start + timedelta(days=steps)
    if period == "week":
        return start + timedelta(weeks=steps)
    index = start.year * 12 + start.month - 1 + _MONTHS[period] * steps
    return date(index // 12, index % 12 + 1, 1)


def same_day_before(day: date, period: str) -> date:
    """``day``'s place in the previous period: a day, a week, or as many months back (the
    month's last day when it is shorter)."""
    if period == "day":
        return day - timedelta(days=1)
    if period == "week":
        return day - timedelta(weeks=1)
    index = day.year * 12 + day.month - 1 - _MONTHS[period]
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Windows:
    """This period so far and the same stretch of the previous one: half-open ``[low,
    high)`` bounds as the filters compare them, and the first and last days for words."""

    period: str
    current: tuple[date, date]
    previous: tuple[date, date]
    current_filter: Any
    previous_filter: Any


def windows(field: str, *, is_date: bool, period: str, now: datetime, zone: ZoneInfo) -> Windows:
    """The KPI's two windows on ``field`` at ``now`` in the clinic's ``zone``."""
    local = now.astimezone(zone)
    today = local.date()
    start = period_start(today, period)
    before_start = shift(start, period, -1)
    before_day = same_day_before(today, period)
    var = {"var": field}

    def between(low: str, high: str) -> Any:
        return {"and": [{">=": [var, low]}, {"<": [var, high]}]}

    def bound(day: date) -> str:
        if is_date:
            return day.isoformat()
        moment = datetime.combine(day, time(), tzinfo=zone).astimezone(ZoneInfo("UTC"))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    current = between(bound(start), bound(today + timedelta(days=1)))
    previous = between(bound(before_start), bound(before_day + timedelta(days=1)))
    return Windows(period, (start, today), (before_start, before_day), current, previous)


def _en_day(day: date, year: bool) -> str:
    return f"{day.day} {_EN_MONTHS[day.month - 1]}" + (f" {day.year}" if year else "")


def _zh_day(day: date, year: bool, month: bool = True) -> str:
    text = (f"{day.month}月" if month else "") + f"{day.day}日"
    return (f"{day.year}年" if year else "") + text


def _span(first: date, last: date, locale: str, year: bool) -> str:
    if locale.startswith("zh"):
        if first == last:
            return _zh_day(first, year)
        return f"{_zh_day(first, year)}–{_zh_day(last, False, last.month != first.month)}"
    if first == last:
        return _en_day(first, year)
    return f"{_en_day(first, False)} – {_en_day(last, year)}"


def describe(found: Windows, locale: str) -> tuple[str, str]:
    """The two windows in words: ("1 Dec – 3 Dec", "1 Nov – 3 Nov")."""
    year = found.current[0].year != found.previous[0].year
    return (
        _span(*found.current, locale, year),
        _span(*found.previous, locale, year),
    )


def compared(found: Windows, locale: str) -> str:
    """ "1 Dec – 3 Dec vs 1 Nov – 3 Nov" (zh-CN: "12月1日–3日 对比 11月1日–3日")."""
    now_words, then_words = describe(found, locale)
    joiner = " 对比 " if locale.startswith("zh") else " vs "
    return now_words + joiner + then_words
