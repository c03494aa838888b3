"""Formloom's extensions: now, today, date_add, days_between, years_between, hour_of,
weekday_of, contains, is_empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formloom.engines.logic import InvalidArguments, LogicError, evaluate

NOON_UTC = datetime(2024, 1, 15, 12, 0, 30, 999_999, tzinfo=UTC)


# -- now / today -------------------------------------------------------------------------------


def test_now_is_utc_in_whole_seconds() -> None:
    assert evaluate({"now": []}, now=NOON_UTC) == "2024-01-15T12:00:30Z"


def test_today_is_the_local_date_of_now() -> None:
    # 00:30 in Shanghai on 1 March is still 29 February in UTC.
    shanghai = datetime(2024, 3, 1, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert evaluate({"today": []}, now=shanghai) == "2024-03-01"
    assert evaluate({"now": []}, now=shanghai) == "2024-02-29T16:30:00Z"
    assert evaluate({"today": []}, now=shanghai.astimezone(UTC)) == "2024-02-29"


def test_today_with_a_fixed_offset_and_a_naive_now() -> None:
    assert evaluate(
        {"today": []}, now=datetime(2024, 1, 1, 23, tzinfo=timezone(timedelta(hours=-5)))
    ) == ("2024-01-01")
    assert evaluate({"now": []}, now=datetime(2024, 1, 1, 23)) == "2024-01-01T23:00:00Z"


def test_without_now_reading_the_time_is_an_error_not_the_wall_clock() -> None:
    # The evaluator takes its clock from the caller; it never reads one.
    for rule in ({"now": []}, {"today": []}, {"date_add": [{"today": []}, 1, "day"]}):
        with pytest.raises(LogicError, match="read the caller's clock"):
            evaluate(rule)
    assert evaluate({"if": [False, {"now": []}, "no time read"]}) == "no time read"
    assert evaluate({"==": [1, 1]}) is True


def test_now_takes_no_arguments() -> None:
    with pytest.raises(InvalidArguments, match="takes no arguments"):
        evaluate({"now": ["x"]}, now=NOON_UTC)


def test_age_rule_with_today() -> None:
    rule = {">=": [{"years_between": [{"var": "dob"}, {"today": []}]}, 18]}
    assert evaluate(rule, {"dob": "2006-01-15"}, now=NOON_UTC) is True
    assert evaluate(rule, {"dob": "2006-01-16"}, now=NOON_UTC) is False


# -- date_add ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount", "unit", "expected"),
    [
        ("2024-01-31", 1, "month", "2024-02-29"),  # leap year: clamps to the 29th
        ("2023-01-31", 1, "month", "2023-02-28"),
        ("2024-03-31", -1, "month", "2024-02-29"),
        ("2024-02-29", 1, "year", "2025-02-28"),
        ("2024-02-29", 4, "years", "2028-02-29"),
        ("2024-12-15", 1, "month", "2025-01-15"),
        ("2024-01-15", -13, "month", "2022-12-15"),
        ("2024-02-28", 1, "day", "2024-02-29"),
        ("2023-02-28", 1, "day", "2023-03-01"),
        ("2024-01-01", 2, "week", "2024-01-15"),
        ("2024-01-01", "3", "day", "2024-01-04"),
        ("2024-01-31T10:15:00Z", 1, "month", "2024-02-29T10:15:00Z"),
        ("2024-03-10T01:30:00Z", 90, "minute", "2024-03-10T03:00:00Z"),
        ("2024-01-01T00:00:00+08:00", 1, "hour", "2023-12-31T17:00:00Z"),
        ("2024-01-01T12:00:00", 1.5, "day", "2024-01-03T00:00:00Z"),
        ("2024-12-31T23:59:59Z", 1, "second", "2025-01-01T00:00:00Z"),
    ],
)
def test_date_add(value: str, amount: Any, unit: str, expected: str) -> None:
    assert evaluate({"date_add": [value, amount, unit]}) == expected


def test_date_add_on_fields() -> None:
    rule = {"date_add": [{"var": "visit"}, {"var": "interval"}, "day"]}
    assert evaluate(rule, {"visit": "2024-01-30", "interval": 3}) == "2024-02-02"


@pytest.mark.parametrize(
    "args",
    [[None, 1, "day"], ["2024-01-01", None, "day"], ["2024-01-01", 1, None]],
)
def test_date_add_propagates_null(args: list[Any]) -> None:
    assert evaluate({"date_add": args}) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2024-02-30", 1, "day"], "not an ISO date"),
        (["yesterday", 1, "day"], "not an ISO date"),
        ([20240101, 1, "day"], "expected an ISO date"),
        (["2024-01-01", "many", "day"], "not a number"),
        (["2024-01-01", 1, "fortnight"], "unit must be one of"),
        (["2024-01-01", 1.5, "month"], "fraction of a month"),
        (["2024-01-01", 3, "hour"], "needs a datetime"),
        (["2024-01-01", 0.5, "day"], "needs a datetime"),
        (["9999-12-31", 1, "day"], "outside years"),
        (["2024-01-01", 10**9, "year"], "outside years"),
        (["2024-01-01", 1], "takes 3 arguments"),
    ],
)
def test_date_add_rejects_bad_input_clearly(args: list[Any], message: str) -> None:
    with pytest.raises(InvalidArguments, match=message) as caught:
        evaluate({"date_add": args})
    assert "date_add" in str(caught.value)


# -- days_between / years_between --------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "days"),
    [
        ("2024-02-28", "2024-03-01", 2),  # through a leap day
        ("2023-02-28", "2023-03-01", 1),
        ("2024-03-01", "2024-02-28", -2),
        ("2024-01-01T23:59:00Z", "2024-01-02T00:01:00Z", 1),  # datetimes count by date
        ("2024-01-01", "2024-01-01T18:00:00+08:00", 0),
        ("2023-01-01", "2024-01-01", 365),
    ],
)
def test_days_between(a: str, b: str, days: int) -> None:
    assert evaluate({"days_between": [a, b]}) == days


@pytest.mark.parametrize(
    ("a", "b", "years"),
    [
        ("2000-05-20", "2024-05-19", 23),
        ("2000-05-20", "2024-05-20", 24),
        ("2000-02-29", "2023-02-28", 22),  # leap-day birthday: a year older on 1 March
        ("2000-02-29", "2023-03-01", 23),
        ("2000-02-29", "2024-02-29", 24),
        ("2024-05-20", "2000-05-21", -23),
        ("2024-05-20", "2024-05-20", 0),
        ("1990-06-15T08:00:00Z", "2024-06-15", 34),
    ],
)
def test_years_between(a: str, b: str, years: int) -> None:
    assert evaluate({"years_between": [a, b]}) == years


def test_between_propagates_null_and_rejects_garbage() -> None:
    assert evaluate({"days_between": [{"var": "missing"}, "2024-01-01"]}, {}) is None
    assert evaluate({"years_between": ["2024-01-01", None]}) is None
    with pytest.raises(LogicError, match="years_between"):
        evaluate({"years_between": ["2024-13-01", "2024-01-01"]})
    with pytest.raises(LogicError, match="days_between"):
        evaluate({"days_between": ["2024-01-01"]})


# -- hour_of / weekday_of ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "hour", "weekday"),
    [
        ("2024-01-15T12:00:00Z", None, 12, 1),  # no zone: UTC
        ("2024-01-15T12:00:00Z", "UTC", 12, 1),
        ("2024-01-15T16:00:00Z", "Asia/Shanghai", 0, 2),  # past local midnight: Tuesday
        ("2024-01-15T15:59:59Z", "Asia/Shanghai", 23, 1),
        ("2024-01-15T08:00:00+08:00", "Asia/Shanghai", 8, 1),  # an offset in the text
        ("2024-01-14T23:30:00-05:00", "Asia/Shanghai", 12, 1),
        ("2024-01-15T01:00:00", "America/New_York", 20, 7),  # no offset means UTC
        # daylight saving time: New York is UTC-5 in winter, UTC-4 in summer
        ("2024-03-10T06:59:59Z", "America/New_York", 1, 7),
        ("2024-03-10T07:00:00Z", "America/New_York", 3, 7),
        ("2024-11-03T05:30:00Z", "America/New_York", 1, 7),  # the first 01:30
        ("2024-11-03T06:30:00Z", "America/New_York", 1, 7),  # the second 01:30
        ("2024-06-30T23:00:00Z", "Pacific/Kiritimati", 13, 1),  # UTC+14
        ("2024-01-15", "Asia/Shanghai", 0, 1),  # a date: midnight, its own weekday
        ("2024-01-21", None, 0, 7),
    ],
)
def test_hour_and_weekday_of(value: str, zone: str | None, hour: int, weekday: int) -> None:
    args: list[Any] = [value] if zone is None else [value, zone]
    assert evaluate({"hour_of": args}) == hour
    assert evaluate({"weekday_of": args}) == weekday


def test_hour_and_weekday_of_fields_and_null() -> None:
    data = {"seen": "2024-05-01T02:15:00Z", "empty": None}
    assert evaluate({"hour_of": [{"var": "seen"}, "Asia/Shanghai"]}, data) == 10
    assert evaluate({"weekday_of": {"var": "seen"}}, data) == 3
    for op in ("hour_of", "weekday_of"):
        assert evaluate({op: [{"var": "empty"}, "Asia/Shanghai"]}, data) is None
        assert evaluate({op: [{"var": "absent"}]}, data) is None
        assert evaluate({op: [{"var": "seen"}, None]}, data) is None
        # strict equality: an empty field is not hour 0 (loose == says null == 0)
        assert evaluate({"===": [{op: {"var": "empty"}}, 0]}, data) is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2024-01-15T12:00:00Z", "Mars/Olympus"], "is not a time zone name"),
        (["2024-01-15T12:00:00Z", ""], "is not a time zone name"),
        (["2024-01-15T12:00:00Z", "../../etc/passwd"], "is not a time zone name"),
        (["2024-01-15T12:00:00Z", 8], "is not a time zone name"),
        (["yesterday", "UTC"], "is not an ISO date"),
        ([20240115, "UTC"], "expected an ISO date or datetime string"),
        ([], "takes 1 or 2 arguments, got 0"),
        (["2024-01-15", "UTC", "x"], "takes 1 or 2 arguments, got 3"),
    ],
)
def test_hour_and_weekday_of_reject_bad_input(args: list[Any], message: str) -> None:
    for op in ("hour_of", "weekday_of"):
        with pytest.raises(InvalidArguments, match=message) as caught:
            evaluate({op: args})
        assert op in str(caught.value) or "arguments" in message


# -- contains / is_empty -----------------------------------------------------------------------


def test_contains() -> None:
    assert evaluate({"contains": [{"var": "tags"}, "vip"]}, {"tags": ["vip", "new"]}) is True
    assert evaluate({"contains": [{"var": "tags"}, "old"]}, {"tags": ["vip"]}) is False
    assert evaluate({"contains": [[1, 2], 2.0]}) is True
    assert evaluate({"contains": [[1, 2], True]}) is False
    assert evaluate({"contains": ["hypertension", "tens"]}) is True
    assert evaluate({"contains": [{"var": "tags"}, "vip"]}, {}) is None
    with pytest.raises(InvalidArguments, match="contains"):
        evaluate({"contains": [12, 1]})
    with pytest.raises(InvalidArguments, match="contains"):
        evaluate({"contains": ["abc", 1]})


@pytest.mark.parametrize(
    ("value", "empty"),
    [
        (None, True),
        ("", True),
        ([], True),
        ({}, True),
        (0, False),
        (False, False),
        (" ", False),
        ([None], False),
        ({"a": None}, False),
    ],
)
def test_is_empty(value: Any, empty: bool) -> None:
    assert evaluate({"is_empty": [{"preserve": value}]}) is empty
    assert evaluate({"is_empty": {"var": "x"}}, {"x": value}) is empty  # a list is not spread


def test_is_empty_of_a_missing_field() -> None:
    assert evaluate({"is_empty": {"var": "x"}}, {}) is True
    assert evaluate({"is_empty": [{"var": "x"}]}, {"x": []}) is True
    assert evaluate({"is_empty": {"var": "x"}}, {"x": ["a", "b"]}) is False
    with pytest.raises(InvalidArguments, match="takes 1 argument"):
        evaluate({"is_empty": [1, 2]})
