"""The pure parts of the analyses (issue 20), without a database: earlier periods (leap
days, 52 weeks, fiscal keys), fiscal ranges, filters cut where they read, time zones that
are not zones, and conditions on the values that cannot be worked out."""

from __future__ import annotations

from datetime import date

import pytest

from formloom.engines.reports.result import _bucket_range, periods
from formloom.engines.reports.spec import known_zone, previous_period, split_filter


@pytest.mark.parametrize(
    ("key", "bucket", "offset", "earlier"),
    [
        ("2024-03-01", "day", "period", "2024-02-29"),
        ("2024-02-29", "day", "year", "2023-02-28"),
        ("2026-01-04", "week", "period", "2025-12-28"),
        ("2026-01-04", "week", "year", "2025-01-05"),
        ("2026-01", "month", "period", "2025-12"),
        ("2026-01", "month", "year", "2025-01"),
        ("2026-Q1", "quarter", "period", "2025-Q4"),
        ("2026-Q1", "quarter", "year", "2025-Q1"),
        ("FY2026-Q1", "quarter", "period", "FY2025-Q4"),
        ("FY2026", "year", "period", "FY2025"),
        ("2026", "year", "year", "2025"),
    ],
)
def test_previous_period(key: str, bucket: str, offset: str, earlier: str) -> None:
    assert previous_period(key, bucket, offset) == earlier


def test_fiscal_ranges_are_the_calendar_months_they_cover() -> None:
    assert _bucket_range("FY2026", "year", 4) == (date(2025, 4, 1), date(2026, 4, 1))
    assert _bucket_range("FY2026-Q1", "quarter", 4) == (date(2025, 4, 1), date(2025, 7, 1))
    assert _bucket_range("FY2026-Q4", "quarter", 4) == (date(2026, 1, 1), date(2026, 4, 1))
    assert _bucket_range("FY2026-Q2", "quarter", 7) == (date(2025, 10, 1), date(2026, 1, 1))
    assert periods("FY2025-Q4", "FY2026-Q2", "quarter", 10) == [
        "FY2025-Q4",
        "FY2026-Q1",
        "FY2026-Q2",
    ]


def test_filters_are_cut_where_they_read() -> None:
    rule = {
        "and": [
            {">": [{"var": "fee"}, 1]},
            {"==": [{"var": "patient.gender"}, "f"]},
            {"in": [{"var": ["patient.ward", "east"]}, ["east", "west"]]},
        ]
    }
    split, issues = split_filter(rule)
    assert issues == []
    assert split.source == {">": [{"var": "fee"}, 1]}
    assert split.related == {
        "patient": {
            "and": [
                {"==": [{"var": "gender"}, "f"]},
                {"in": [{"var": ["ward", "east"]}, ["east", "west"]]},
            ]
        }
    }
    mixed, issues = split_filter({"or": [{"var": "patient.hiv"}, {"var": "fee"}]})
    assert [code for _, code, _ in issues] == ["related_filter_mixed"]
    two, issues = split_filter({"and": [{"var": "fee"}, {"==": [{"var": "a.x"}, {"var": "b.y"}]}]})
    assert [(pointer, code) for pointer, code, _ in issues] == [("/and/1", "related_filter_mixed")]
    plain = {"and": [{"var": "fee"}]}
    assert split_filter(plain)[0].source is plain  # as written: its pointers stay right


@pytest.mark.parametrize("name", ["America", "America/", "", "../x", "/etc/passwd", "Mars/Olympus"])
def test_what_is_not_a_zone(name: str) -> None:
    assert not known_zone(name)
