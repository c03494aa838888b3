"""KPIs compare like with like (issue 17, item 7): this period so far against the same days of
the previous one, named in words, on the clinic's clock; on SQLite and PostgreSQL.

On 3 December at 10:00 in Shanghai, "this month" is 1-3 December and is compared with 1-3
November — not with the whole of November (the issue's "1 ▼87.5 % previous period: 8"
compared three days with a month), and records dated later this month do not count yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.reports.periods import compared, describe, windows
from formloom.platform.settings import Settings
from tests import factories as f

APP = "desk"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 3 December 10:00 in Shanghai (02:00 UTC)
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


def definition() -> dict[str, Any]:
    kpi = {"type": "kpi", "period": "month"}
    return f.app(
        APP,
        f.form("visit", f.field("day", "date"), f.field("at", "datetime")),
        reports=[
            {"key": "by_day", "label": "Visits by day", "form": "visit",
             "measures": [{"key": "n", "op": "count"}], "chart": {**kpi, "period_field": "day"}},
            {"key": "by_at", "label": "Visits by time", "form": "visit",
             "measures": [{"key": "n", "op": "count"}], "chart": {**kpi, "period_field": "at"}},
        ],
    )  # fmt: skip


async def test_a_month_so_far_against_the_same_days_of_the_last(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    rows = [
        # (date, instant): in the window compared, after it, and this month's later days
        ("2026-11-02", "2026-11-03T15:30:00Z"),  # 3 Nov 23:30 in Shanghai: compared
        ("2026-11-20", "2026-11-03T16:30:00Z"),  # 4 Nov 00:30 in Shanghai: not
        ("2026-12-02", "2026-12-02T23:00:00Z"),  # 3 Dec 07:00: this month so far
        ("2026-12-20", "2026-11-30T16:30:00Z"),  # 1 Dec 00:30 in Shanghai: this month
        ("2026-10-31", "2026-10-31T15:59:00Z"),  # 31 Oct 23:59: before either window
    ]
    for day, at in rows:
        answer = await client.post(
            f"/api/records/{APP}/visit", json={"data": {"day": day, "at": at}}
        )
        assert answer.status_code == 201, answer.text
    for report, current, previous in [("by_day", 1, 1), ("by_at", 2, 1)]:
        answer = await client.get(f"/api/reports/{APP}/{report}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["result"]["grand_total"]["values"]["n"] == current, report
        assert body["previous"] == previous, report
        svg = (await client.get(f"/api/reports/{APP}/{report}", params={"format": "svg"})).text
        assert "1 Nov – 3 Nov: 1" in svg, svg
        zh = await client.get(
            f"/api/reports/{APP}/{report}", params={"format": "svg", "locale": "zh-CN"}
        )
        assert "11月1日–3日: 1" in zh.text, zh.text


@pytest.mark.parametrize(
    ("now", "period", "current", "previous", "words"),
    [
        (date(2026, 12, 3), "month", (date(2026, 12, 1), date(2026, 12, 3)),
         (date(2026, 11, 1), date(2026, 11, 3)), "1 Dec – 3 Dec vs 1 Nov – 3 Nov"),
        # a day the previous month does not have: its last day
        (date(2027, 3, 31), "month", (date(2027, 3, 1), date(2027, 3, 31)),
         (date(2027, 2, 1), date(2027, 2, 28)), "1 Mar – 31 Mar vs 1 Feb – 28 Feb"),
        # Thursday: Monday to Thursday against last week's
        (date(2026, 12, 3), "week", (date(2026, 11, 30), date(2026, 12, 3)),
         (date(2026, 11, 23), date(2026, 11, 26)), "30 Nov – 3 Dec vs 23 Nov – 26 Nov"),
        (date(2026, 12, 3), "day", (date(2026, 12, 3), date(2026, 12, 3)),
         (date(2026, 12, 2), date(2026, 12, 2)), "3 Dec vs 2 Dec"),
        (date(2026, 12, 3), "quarter", (date(2026, 10, 1), date(2026, 12, 3)),
         (date(2026, 7, 1), date(2026, 9, 3)), "1 Oct – 3 Dec vs 1 Jul – 3 Sep"),
        # January: the comparison is last year's, and both say their year
        (date(2027, 1, 2), "month", (date(2027, 1, 1), date(2027, 1, 2)),
         (date(2026, 12, 1), date(2026, 12, 2)), "1 Jan – 2 Jan 2027 vs 1 Dec – 2 Dec 2026"),
        (date(2028, 2, 29), "year", (date(2028, 1, 1), date(2028, 2, 29)),
         (date(2027, 1, 1), date(2027, 2, 28)), "1 Jan – 29 Feb 2028 vs 1 Jan – 28 Feb 2027"),
    ],
)  # fmt: skip
def test_windows_and_their_words(
    now: date,
    period: str,
    current: tuple[date, date],
    previous: tuple[date, date],
    words: str,
) -> None:
    at = datetime(now.year, now.month, now.day, 23, 0, tzinfo=SHANGHAI)
    found = windows("day", is_date=True, period=period, now=at, zone=SHANGHAI)
    assert (found.current, found.previous) == (current, previous)
    assert compared(found, "en") == words
    assert found.current_filter == {
        "and": [
            {">=": [{"var": "day"}, current[0].isoformat()]},
            {"<": [{"var": "day"}, date.fromordinal(current[1].toordinal() + 1).isoformat()]},
        ]
    }


def test_words_in_chinese() -> None:
    at = datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI)
    month = windows("at", is_date=False, period="month", now=at, zone=SHANGHAI)
    assert compared(month, "zh-CN") == "12月1日–3日 对比 11月1日–3日"
    week = windows("at", is_date=False, period="week", now=at, zone=SHANGHAI)
    assert describe(week, "zh-CN") == ("11月30日–12月3日", "11月23日–26日")
    # instants: whole days on the clinic's clock, as UTC
    assert month.current_filter["and"][0] == {">=": [{"var": "at"}, "2026-11-30T16:00:00Z"]}
    assert month.previous_filter["and"][1] == {"<": [{"var": "at"}, "2026-11-03T16:00:00Z"]}
