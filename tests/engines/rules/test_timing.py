"""Durations, cron next runs, schedule rules and date-relative due moments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from formloom.engines.rules import (
    Duration,
    InvalidTiming,
    anniversary,
    date_due,
    next_run,
    next_schedule_run,
    parse_cron,
    parse_duration,
    parse_time_of_day,
    zone_named,
)

from .factory import rule

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- durations and times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P3D", Duration(days=3)),
        ("-P1D", Duration(days=-1)),
        ("PT24H", Duration(seconds=86400)),
        ("P1Y2M", Duration(months=14)),
        ("P2W", Duration(days=14)),
        ("PT1H30M5S", Duration(seconds=5405)),
        ("+P1DT2H", Duration(days=1, seconds=7200)),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "3D", "P1.5D", "p1d", "P-1D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidTiming):
        parse_duration(text)


def test_times_and_zones() -> None:
    assert parse_time_of_day("09:05").hour == 9
    for bad in ("9:00", "24:00", "09:60", "0900"):
        with pytest.raises(InvalidTiming):
            parse_time_of_day(bad)
    assert zone_named("Asia/Shanghai") == SH
    with pytest.raises(InvalidTiming):
        zone_named("Mars/Olympus")


# -- cron -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "zone", "expected"),
    [
        ("*/15 * * * *", utc(2026, 1, 1, 10, 7), UTC, utc(2026, 1, 1, 10, 15)),
        ("0 9 * * *", utc(2026, 1, 1, 9, 0), UTC, utc(2026, 1, 2, 9, 0)),  # strictly after
        ("0 9 * * mon-fri", utc(2026, 11, 20, 2, 0), SH, utc(2026, 11, 23, 1, 0)),
        ("30 8 1,15 * *", utc(2026, 1, 2), UTC, utc(2026, 1, 15, 8, 30)),
        ("0 0 1 jan *", utc(2026, 6, 1), UTC, utc(2027, 1, 1)),
        ("0 12 * * 7", utc(2026, 11, 23), UTC, utc(2026, 11, 29, 12)),  # 7 = Sunday
        ("0 0 29 2 *", utc(2026, 3, 1), UTC, utc(2028, 2, 29)),
        ("5-10/5 1 * * *", utc(2026, 1, 1, 1, 6), UTC, utc(2026, 1, 1, 1, 10)),
        ("0 3/6 * * *", utc(2026, 1, 1, 4), UTC, utc(2026, 1, 1, 9)),
        ("@daily", utc(2026, 1, 1, 0, 0, 1), UTC, utc(2026, 1, 2)),
        # Day of month OR day of week when both are restricted (crontab semantics).
        ("0 0 13 * fri", utc(2026, 2, 1), UTC, utc(2026, 2, 6)),
        # 09:00 in New York: EST before the March change, EDT after it.
        ("0 9 * * *", utc(2026, 3, 7, 15), NY, utc(2026, 3, 8, 13)),
        # 02:30 does not exist on 8 March 2026 in New York: it runs at 03:30 EDT.
        ("30 2 * * *", utc(2026, 3, 8, 5), NY, utc(2026, 3, 8, 7, 30)),
        # 01:30 happens twice on 1 November 2026: it runs once, the first time (EDT).
        ("30 1 * * *", utc(2026, 11, 1, 4), NY, utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", utc(2026, 11, 1, 5, 30), NY, utc(2026, 11, 2, 6, 30)),
    ],
)
def test_next_run(expression: str, after: datetime, zone: ZoneInfo, expected: datetime) -> None:
    assert next_run(expression, after, zone) == expected


def test_impossible_cron_never_runs() -> None:
    assert next_run("0 0 31 2 *", utc(2026, 1, 1), UTC) is None


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
     "*/0 * * * *", "5-1 * * * *", "a * * * *", "1,,2 * * * *", "* * * smarch *"],
)  # fmt: skip
def test_bad_cron(expression: str) -> None:
    with pytest.raises(InvalidTiming):
        parse_cron(expression)


def test_parse_cron_names_and_lists() -> None:
    schedule = parse_cron("0,30 9-11 * JAN-mar sun,sat")
    assert schedule.minutes == (0, 30) and schedule.hours == (9, 10, 11)
    assert schedule.months == {1, 2, 3} and schedule.weekdays == {0, 6}


def test_next_run_needs_an_aware_instant() -> None:
    with pytest.raises(ValueError):
        next_run("* * * * *", datetime(2026, 1, 1), UTC)


# -- schedule rules ---------------------------------------------------------------------


def test_next_schedule_run_daily_at_and_cron() -> None:
    daily = rule(on={"form": "patient", "at": "09:00"})
    assert next_schedule_run(daily, utc(2026, 11, 23, 1, 30), SH) == utc(2026, 11, 24, 1)
    assert next_schedule_run(daily, utc(2026, 11, 23, 0, 59), SH) == utc(2026, 11, 23, 1)
    weekly = rule(on={"form": "patient", "cron": "0 8 * * mon"})
    assert next_schedule_run(weekly, utc(2026, 11, 23, 1, 30), SH) == utc(2026, 11, 30, 0)
    with pytest.raises(TypeError):
        next_schedule_run(rule(), utc(2026, 1, 1), SH)


# -- date-relative rules ----------------------------------------------------------------

NOW = utc(2026, 11, 23, 1, 30)


def test_days_after_a_datetime_at_a_time_of_day() -> None:
    r = rule(on={"form": "patient", "field": "discharged_at", "offset": "P3D", "at": "09:00"})
    # Discharged 18:00 on 20 Nov in Shanghai (10:00 UTC): due 23 Nov 09:00 Shanghai.
    assert date_due(r, {"discharged_at": "2026-11-20T10:00:00Z"}, now=NOW, zone=SH) == utc(
        2026, 11, 23, 1
    )
    # Discharged 23:30 local (15:30 UTC, still the 20th in UTC): the local date counts.
    assert date_due(r, {"discharged_at": "2026-11-20T16:30:00Z"}, now=NOW, zone=SH) == utc(
        2026, 11, 24, 1
    )


def test_across_the_dst_change_in_new_york() -> None:
    r = rule(on={"form": "patient", "field": "discharged_at", "offset": "P3D", "at": "09:00"})
    # 6 March 15:00 EST + 3 days = 9 March, 09:00 EDT (13:00 UTC).
    assert date_due(r, {"discharged_at": "2026-03-06T20:00:00Z"}, now=NOW, zone=NY) == utc(
        2026, 3, 9, 13
    )
    # Without a time of day a datetime keeps its wall-clock time: 15:00 EDT.
    r = rule(on={"form": "patient", "field": "discharged_at", "offset": "P3D"})
    assert date_due(r, {"discharged_at": "2026-03-06T20:00:00Z"}, now=NOW, zone=NY) == utc(
        2026, 3, 9, 19
    )
    # "PT24H" is elapsed time: 24 real hours.
    r = rule(on={"form": "patient", "field": "discharged_at", "offset": "PT24H"})
    assert date_due(r, {"discharged_at": "2026-03-07T20:00:00Z"}, now=NOW, zone=NY) == utc(
        2026, 3, 8, 20
    )
    # A time in the spring-forward gap moves forward by the gap.
    r = rule(on={"form": "patient", "field": "last_visit", "offset": "P1D", "at": "02:30"})
    assert date_due(r, {"last_visit": "2026-03-07"}, now=NOW, zone=NY) == utc(2026, 3, 8, 7, 30)


def test_date_fields_and_negative_offsets() -> None:
    before = rule(on={"form": "patient", "field": "last_visit", "offset": "-P1D", "at": "18:00"})
    assert date_due(before, {"last_visit": "2026-12-01"}, now=NOW, zone=SH) == utc(2026, 11, 30, 10)
    midnight = rule(on={"form": "patient", "field": "last_visit", "offset": "P85D"})
    assert date_due(midnight, {"last_visit": "2026-09-01"}, now=NOW, zone=SH) == utc(
        2026, 11, 24, 16
    )
    # One-off moments in the past are still returned: the platform decides to catch up.
    assert date_due(midnight, {"last_visit": "2020-01-01"}, now=NOW, zone=SH) is not None


def test_empty_dates_have_no_timer() -> None:
    r = rule(on={"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00"})
    assert date_due(r, {}, now=NOW, zone=SH) is None
    assert date_due(r, {"birth_date": None}, now=NOW, zone=SH) is None
    assert date_due(r, {"birth_date": ""}, now=NOW, zone=SH) is None
    with pytest.raises(InvalidTiming):
        date_due(r, {"birth_date": "yesterday"}, now=NOW, zone=SH)


def test_birthdays_every_year() -> None:
    r = rule(on={"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00"})
    # Today 09:30 Shanghai: today's 09:00 has passed, so next year.
    assert date_due(r, {"birth_date": "1990-11-23"}, now=NOW, zone=SH) == utc(2027, 11, 23, 1)
    assert date_due(r, {"birth_date": "1990-11-24"}, now=NOW, zone=SH) == utc(2026, 11, 24, 1)
    # In New York it is 20:30 on the 22nd: the 23rd's 09:00 is still ahead.
    assert date_due(r, {"birth_date": "1990-11-23"}, now=NOW, zone=NY) == utc(2026, 11, 23, 14)
    # A day before the birthday.
    eve = rule(on={"form": "patient", "field": "birth_date", "every_year": True,
                   "offset": "-P1D", "at": "09:00"})  # fmt: skip
    assert date_due(eve, {"birth_date": "1990-01-01"}, now=NOW, zone=SH) == utc(2026, 12, 31, 1)


def test_leap_day_birthdays() -> None:
    r = rule(on={"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00"})
    born = {"birth_date": "2000-02-29"}
    assert date_due(r, born, now=NOW, zone=SH) == utc(2027, 3, 1, 1)
    assert date_due(r, born, now=utc(2027, 3, 1, 2), zone=SH) == utc(2028, 2, 29, 1)
    assert anniversary(date(2000, 2, 29), 2028) == date(2028, 2, 29)
    assert anniversary(date(2000, 2, 29), 2027) == date(2027, 3, 1)
    assert anniversary(date(2000, 2, 28), 2027) == date(2027, 2, 28)


def test_date_due_needs_a_date_rule() -> None:
    with pytest.raises(TypeError):
        date_due(rule(), {}, now=NOW, zone=SH)
