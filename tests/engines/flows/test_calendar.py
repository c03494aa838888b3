"""Business calendars: working days, working hours, due times across weekends, holidays, DST."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from formloom.engines.flows.calendar import MAX_IDLE_DAYS, BusinessCalendar, CalendarSpec

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
H = timedelta(hours=1)


def at(zone: ZoneInfo, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A 2026 local time (first occurrence if ambiguous)."""
    return datetime(2026, month, day, hour, minute, tzinfo=zone)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# A day with a lunch break, Monday to Friday.
LUNCH = BusinessCalendar(CalendarSpec(hours=[("09:00", "12:00"), ("13:00", "17:00")]), SH)

# The 2026 public holidays of mainland China with their make-up working days (调休), as
# published by the State Council to our knowledge; the tests only use them as data.
CHINA_2026_JSON = """{
  "hours": [["09:00", "12:00"], ["13:00", "17:00"]],
  "holidays": ["2026-01-01/2026-01-03", "2026-02-15/2026-02-23", "2026-04-04/2026-04-06",
               "2026-05-01/2026-05-05", "2026-06-19/2026-06-21", "2026-09-25/2026-09-27",
               "2026-10-01/2026-10-07"],
  "workdays": ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20",
               "2026-10-10"]
}"""
CHINA = BusinessCalendar(CalendarSpec.model_validate_json(CHINA_2026_JSON, strict=True), SH)

# A night shift every day, across New York's DST changes (2026-03-08 and 2026-11-01).
NIGHT = BusinessCalendar(CalendarSpec(days=ALL_DAYS, hours=[("01:00", "04:00")]), NY)
# An interval starting in the spring-forward gap (02:00-03:00 does not exist on 03-08).
GAP = BusinessCalendar(CalendarSpec(days=ALL_DAYS, hours=[("02:30", "05:00")]), NY)
# Intervals inside the ambiguous hour of the fall-back day.
FOLD = BusinessCalendar(
    CalendarSpec(days=ALL_DAYS, hours=[("00:30", "01:30"), ("01:45", "02:30")]), NY
)
# A shift across midnight, split at 24:00.
OVERNIGHT = BusinessCalendar(
    CalendarSpec(
        days=["mon", "tue", "wed", "thu", "fri", "sat"],
        hours=[("00:00", "06:00"), ("22:00", "24:00")],
        holidays=["2026-03-29"],
    ),
    LONDON,
)
ALWAYS = BusinessCalendar.always(NY)


# ---------------------------------------------------------------------------------------
# Concrete due times
# ---------------------------------------------------------------------------------------


def test_friday_afternoon_plus_two_working_hours_is_monday_morning() -> None:
    result = LUNCH.add_working_hours(at(SH, 3, 6, 16), 2)  # Friday
    assert result == at(SH, 3, 9, 10)  # Monday
    assert result.tzinfo is UTC
    assert LUNCH.add_working_time(at(SH, 3, 6, 16), 2 * H) == result


def test_48_working_hours_across_a_weekend_and_a_holiday() -> None:
    spec = CalendarSpec(zone="Europe/Berlin", holidays=["2026-04-03"])  # illustrative holiday
    calendar = BusinessCalendar(spec, SH)  # spec.zone wins over the clinic's zone
    assert calendar.zone == BERLIN
    start = at(BERLIN, 4, 1, 13)  # Wednesday: 4 h, Thursday 8, Friday off, then 8 a day
    due = calendar.add_working_hours(start, 48)
    assert due == at(BERLIN, 4, 10, 13)
    assert calendar.working_time_between(start, due) == 48 * H
    assert not calendar.is_working_day(date(2026, 4, 3))


def test_china_national_day_2026_with_make_up_days() -> None:
    assert not CHINA.is_working_day(date(2026, 10, 1))  # Thursday, a holiday
    assert not CHINA.is_working_day(date(2026, 10, 3))  # Saturday, a holiday
    assert CHINA.is_working_day(date(2026, 10, 10))  # Saturday, a make-up working day
    assert CHINA.is_working_day(date(2026, 9, 20))  # Sunday, a make-up working day
    assert not CHINA.is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    assert CHINA.is_working_day(date(2026, 10, 8))
    # The day before the holiday, to the first day after it.
    assert CHINA.add_working_hours(at(SH, 9, 30, 16), 2) == at(SH, 10, 8, 10)
    # Friday afternoon runs into the make-up Saturday.
    assert CHINA.add_working_hours(at(SH, 10, 9, 16), 2) == at(SH, 10, 10, 10)
    assert CHINA.add_working_days(at(SH, 9, 30, 16), 3) == at(SH, 10, 10, 16)
    # A Saturday before the make-up Sunday.
    assert CHINA.next_working_moment(at(SH, 9, 19, 10)) == at(SH, 9, 20, 9)
    assert CHINA.working_time_between(at(SH, 9, 30), at(SH, 10, 9)) == 14 * H


def test_a_due_time_at_an_interval_end_is_that_end() -> None:
    assert LUNCH.add_working_hours(at(SH, 3, 9, 9), 3) == at(SH, 3, 9, 12)  # not 13:00
    assert LUNCH.add_working_hours(at(SH, 3, 6, 13), 4) == at(SH, 3, 6, 17)  # not Monday
    assert LUNCH.add_working_hours(at(SH, 3, 6, 13), 4.5) == at(SH, 3, 9, 9, 30)
    assert not LUNCH.is_working_time(at(SH, 3, 6, 17))
    assert LUNCH.is_working_time(at(SH, 3, 6, 16, 59))


def test_a_start_in_the_lunch_break() -> None:
    assert LUNCH.next_working_moment(at(SH, 3, 9, 12, 30)) == at(SH, 3, 9, 13)
    assert LUNCH.add_working_hours(at(SH, 3, 9, 12, 30), 1) == at(SH, 3, 9, 14)
    assert LUNCH.working_time_between(at(SH, 3, 9, 11), at(SH, 3, 9, 14)) == 2 * H
    assert not LUNCH.is_working_time(at(SH, 3, 9, 12))
    assert LUNCH.is_working_time(at(SH, 3, 9, 13))


def test_a_start_on_a_holiday() -> None:
    start = at(SH, 10, 1, 10)
    assert CHINA.next_working_moment(start) == at(SH, 10, 8, 9)
    assert CHINA.add_working_hours(start, 1) == at(SH, 10, 8, 10)
    assert CHINA.add_working_days(start, 1) == at(SH, 10, 9, 9)
    assert CHINA.working_time_between(start, at(SH, 10, 8)) == timedelta(0)


def test_zero_is_the_next_working_moment() -> None:
    friday_end = at(SH, 3, 6, 17)
    assert LUNCH.add_working_time(friday_end, timedelta(0)) == at(SH, 3, 9, 9)
    assert LUNCH.add_working_hours(at(SH, 3, 9, 10), 0) == at(SH, 3, 9, 10)
    assert LUNCH.add_working_days(friday_end, 0) == at(SH, 3, 9, 9)


def test_working_days_keep_the_clock_time() -> None:
    assert LUNCH.add_working_days(at(SH, 3, 6, 16), 2) == at(SH, 3, 10, 16)  # Fri -> Tue
    assert LUNCH.add_working_days(at(SH, 3, 7, 10), 2) == at(SH, 3, 11, 9)  # Sat -> Wed 09:00
    assert LUNCH.add_working_days(at(SH, 3, 9, 12, 30), 1) == at(SH, 3, 10, 13)  # lunch
    assert CHINA.add_working_days(at(SH, 9, 30, 16), 2) == at(SH, 10, 9, 16)


def test_an_overnight_shift_split_at_midnight() -> None:
    saturday_night = at(LONDON, 3, 21, 23)
    assert OVERNIGHT.add_working_hours(saturday_night, 2) == at(LONDON, 3, 23, 1)  # Sunday off
    assert OVERNIGHT.add_working_hours(at(LONDON, 3, 23, 23), 1) == at(LONDON, 3, 24)
    assert OVERNIGHT.add_working_hours(at(LONDON, 3, 23, 23), 2) == at(LONDON, 3, 24, 1)
    assert OVERNIGHT.is_working_time(at(LONDON, 3, 24))


# ---------------------------------------------------------------------------------------
# DST in New York: spring forward 2026-03-08 02:00, fall back 2026-11-01 02:00
# ---------------------------------------------------------------------------------------


def test_a_night_interval_is_shorter_on_the_spring_forward_day() -> None:
    assert NIGHT.working_time_between(at(NY, 3, 7), at(NY, 3, 7, 12)) == 3 * H
    assert NIGHT.working_time_between(at(NY, 3, 8), at(NY, 3, 8, 12)) == 2 * H
    # 01:00 EST to 04:00 EDT: 06:00 to 08:00 UTC.
    assert NIGHT.add_working_hours(at(NY, 3, 8), 2) == utc(3, 8, 8)
    assert NIGHT.add_working_hours(at(NY, 3, 8), 2.5) == at(NY, 3, 9, 1, 30)
    # 02:30 does not exist on the day: the clock time moves on by the gap (03:30 EDT).
    assert NIGHT.add_working_days(at(NY, 3, 7, 2, 30), 1) == utc(3, 8, 7, 30)


def test_a_night_interval_is_longer_on_the_fall_back_day() -> None:
    assert NIGHT.working_time_between(at(NY, 11, 1), at(NY, 11, 1, 12)) == 4 * H
    # 01:00 EDT (05:00 UTC) to 04:00 EST (09:00 UTC).
    assert NIGHT.add_working_hours(at(NY, 11, 1), 4) == utc(11, 1, 9)
    assert NIGHT.add_working_hours(at(NY, 11, 1), 3) == utc(11, 1, 8)
    # The second 01:30 (EST) is working time too.
    second = datetime(2026, 11, 1, 1, 30, tzinfo=NY, fold=1)
    assert NIGHT.is_working_time(second)
    assert NIGHT.working_time_between(second, at(NY, 11, 2)) == timedelta(hours=2.5)


def test_interval_boundaries_in_the_gap_are_the_jump() -> None:
    # 02:30-05:00 on the spring-forward day starts when the clock jumps to 03:00 EDT.
    assert GAP.next_working_moment(at(NY, 3, 8, 1)) == utc(3, 8, 7)
    assert GAP.working_time_between(at(NY, 3, 8), at(NY, 3, 9)) == 2 * H
    empty = BusinessCalendar(CalendarSpec(days=ALL_DAYS, hours=[("02:00", "03:00")]), NY)
    assert empty.working_time_between(at(NY, 3, 8), at(NY, 3, 9)) == timedelta(0)
    assert empty.next_working_moment(at(NY, 3, 8)) == at(NY, 3, 9, 2)


def test_intervals_in_the_ambiguous_hour_use_the_first_occurrence() -> None:
    # 00:30-01:30 EDT, then 01:45 EDT to 02:30 EST: 1 h + 1 h 45.
    assert FOLD.working_time_between(at(NY, 11, 1), at(NY, 11, 2)) == timedelta(hours=2.75)
    assert FOLD.add_working_hours(at(NY, 11, 1), 1) == utc(11, 1, 5, 30)
    assert FOLD.add_working_hours(at(NY, 11, 1), 1.25) == utc(11, 1, 6)


def test_always_is_elapsed_time() -> None:
    start = at(NY, 3, 7, 12)
    # (Aware arithmetic on a zoned datetime is wall-clock arithmetic: add in UTC.)
    assert ALWAYS.add_working_hours(start, 24) == start.astimezone(UTC) + 24 * H
    assert ALWAYS.add_working_hours(start, 24) == at(NY, 3, 8, 13)
    assert ALWAYS.working_time_between(at(NY, 3, 8), at(NY, 3, 9)) == 23 * H
    assert ALWAYS.working_time_between(at(NY, 11, 1), at(NY, 11, 2)) == 25 * H
    assert ALWAYS.next_working_moment(start) == start
    assert ALWAYS.add_working_days(start, 1) == at(NY, 3, 8, 12)  # 23 real hours later
    assert ALWAYS.is_working_day(date(2026, 12, 25))
    # The general path agrees with the shortcut.
    general = BusinessCalendar(CalendarSpec(days=ALL_DAYS, hours=[("00:00", "24:00")]), NY)
    general._continuous = False
    assert general.working_time_between(at(NY, 3, 8), at(NY, 3, 9)) == 23 * H
    assert general.add_working_hours(start, 24) == at(NY, 3, 8, 13)


# ---------------------------------------------------------------------------------------
# Refusals and bounds
# ---------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 9, 10)
    aware = at(SH, 3, 9, 10)
    calls = [
        lambda: LUNCH.next_working_moment(naive),
        lambda: LUNCH.is_working_time(naive),
        lambda: LUNCH.add_working_time(naive, H),
        lambda: LUNCH.add_working_hours(naive, 1),
        lambda: LUNCH.add_working_days(naive, 1),
        lambda: LUNCH.working_time_between(naive, aware),
        lambda: LUNCH.working_time_between(aware, naive),
        lambda: ALWAYS.add_working_time(naive, H),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_bad_amounts_are_refused() -> None:
    start = at(SH, 3, 9, 10)
    with pytest.raises(ValueError, match="negative"):
        LUNCH.add_working_time(start, -H)
    with pytest.raises(ValueError, match="finite"):
        LUNCH.add_working_hours(start, -1)
    with pytest.raises(ValueError, match="finite"):
        LUNCH.add_working_hours(start, float("nan"))
    with pytest.raises(ValueError, match="negative"):
        LUNCH.add_working_days(start, -1)
    with pytest.raises(TypeError):
        LUNCH.add_working_days(start, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LUNCH.is_working_day(start)


def test_a_calendar_without_working_time_raises_instead_of_looping() -> None:
    closed = BusinessCalendar(CalendarSpec(days=ALL_DAYS, holidays=["2026-01-01/2035-12-31"]), SH)
    with pytest.raises(ValueError, match=f"no working time in the {MAX_IDLE_DAYS} days"):
        closed.add_working_hours(at(SH, 3, 9), 1)
    with pytest.raises(ValueError, match="no working time"):
        closed.next_working_moment(at(SH, 3, 9))
    with pytest.raises(ValueError, match="no working time"):
        closed.add_working_days(at(SH, 3, 9), 1)
    closing = BusinessCalendar(CalendarSpec(days=ALL_DAYS, holidays=["2027-01-01/2035-12-31"]), SH)
    assert closing.add_working_days(at(SH, 12, 30, 10), 1) == at(SH, 12, 31, 10)
    with pytest.raises(ValueError, match=f"no working day in the {MAX_IDLE_DAYS} days"):
        closing.add_working_days(at(SH, 12, 30, 10), 2)
    # A bounded question has an answer.
    assert closed.working_time_between(at(SH, 1, 1), at(SH, 12, 31)) == timedelta(0)
    assert closed.next_working_moment(datetime(2035, 12, 30, tzinfo=SH)) == datetime(
        2036, 1, 1, 9, tzinfo=SH
    )
    nobody = BusinessCalendar(CalendarSpec(days=[]), SH)
    with pytest.raises(ValueError, match="no working time"):
        nobody.add_working_hours(at(SH, 3, 9), 1)


def test_ten_thousand_working_hours_iterate_per_interval() -> None:
    start = at(SH, 3, 9, 9)
    due = CHINA.add_working_hours(start, 10_000)
    assert CHINA.working_time_between(start, due) == 10_000 * H
    assert CHINA.is_working_time(due - timedelta(seconds=1))


# ---------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------


def test_spec_defaults_and_json() -> None:
    spec = CalendarSpec()
    assert spec.days == ["mon", "tue", "wed", "thu", "fri"]
    assert spec.hours == [("09:00", "17:00")]
    assert spec.zone is None and spec.holidays == [] and spec.workdays == []
    parsed = CalendarSpec.model_validate_json(
        '{"zone": "Asia/Shanghai", "hours": [["00:00", "24:00"]]}', strict=True
    )
    assert parsed.hours == [("00:00", "24:00")]
    schema = CalendarSpec.model_json_schema()
    assert all("description" in prop for prop in schema["properties"].values())


@pytest.mark.parametrize(
    ("document", "location", "message"),
    [
        ({"hours": []}, ("hours",), "at least one working interval"),
        ({"hours": [["09:00", "13:00"], ["12:00", "17:00"]]}, ("hours",), "overlaps"),
        ({"hours": [["13:00", "17:00"], ["09:00", "12:00"]]}, ("hours",), "sorted"),
        ({"hours": [["17:00", "09:00"]]}, ("hours", 0), "ends before it starts"),
        ({"hours": [["09:00", "09:00"]]}, ("hours", 0), "ends before it starts"),
        ({"hours": [["24:00", "24:00"]]}, ("hours", 0, 0), "may only end"),
        ({"hours": [["9:00", "17:00"]]}, ("hours", 0, 0), "HH:MM"),
        ({"hours": [["09:00", "24:30"]]}, ("hours", 0, 1), "HH:MM"),
        ({"hours": [["09:00"]]}, ("hours", 0, 1), "Field required"),
        ({"days": ["mon", "mon"]}, ("days",), "mon repeated"),
        ({"days": ["monday"]}, ("days", 0), "'mon'"),
        ({"holidays": ["2026-02-30"]}, ("holidays", 0), "not a calendar date"),
        ({"holidays": ["2026/10/01"]}, ("holidays", 0), "YYYY-MM-DD"),
        ({"workdays": ["2026-10-10/2026-10-01"]}, ("workdays", 0), "ends before it starts"),
        ({"holidays": ["2026-10-01/"]}, ("holidays", 0), "YYYY-MM-DD"),
        (
            {"holidays": ["2026-10-01/2026-10-07"], "workdays": ["2026-10-10", "2026-10-07"]},
            ("workdays",),
            "workdays[1] '2026-10-07' and holidays[0]",
        ),
        ({"zone": "Mars/Olympus"}, ("zone",), "IANA"),
        ({"hollidays": []}, ("hollidays",), "Extra inputs"),
    ],
)
def test_spec_validation_errors(
    document: dict[str, object], location: tuple[object, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CalendarSpec.model_validate_json(json.dumps(document), strict=True)
    errors = raised.value.errors()
    assert errors[0]["loc"] == location, errors
    assert message in errors[0]["msg"], errors


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------

CALENDARS = [LUNCH, CHINA, NIGHT, GAP, FOLD, OVERNIGHT, ALWAYS]
ANCHORS = [
    utc(3, 6, 12),  # a Friday
    utc(3, 8, 7),  # New York springs forward
    utc(3, 29, 1),  # London springs forward (and a holiday of OVERNIGHT)
    utc(9, 30, 8),  # before China's National Day
    utc(10, 10, 1),  # a make-up Saturday
    utc(11, 1, 6),  # New York falls back
]
calendars = st.sampled_from(CALENDARS)
moments = st.builds(
    lambda anchor, seconds: anchor + timedelta(seconds=seconds),
    st.sampled_from(ANCHORS),
    st.integers(-3 * 86_400, 3 * 86_400),
)
durations = st.one_of(
    st.integers(0, 100 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    st.integers(0, 60).map(lambda quarters: timedelta(minutes=15 * quarters)),
)
positive = durations.filter(lambda delta: delta > timedelta(0))
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(calendars, moments, durations)
def test_the_working_time_added_is_the_working_time_between(
    calendar: BusinessCalendar, start: datetime, delta: timedelta
) -> None:
    due = calendar.add_working_time(start, delta)
    assert due.tzinfo is UTC
    assert due >= start
    assert calendar.working_time_between(start, due) == delta


@SETTINGS
@given(calendars, moments, durations, positive)
def test_adding_twice_is_adding_the_sum(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    middle = calendar.add_working_time(start, first)
    assert calendar.add_working_time(middle, second) == calendar.add_working_time(
        start, first + second
    )
    # Adding 0 is the next working moment, which leaves an interval's end.
    assert calendar.add_working_time(middle, timedelta(0)) == calendar.next_working_moment(middle)


@SETTINGS
@given(calendars, moments, durations)
def test_a_due_time_is_working_time_or_an_interval_end(
    calendar: BusinessCalendar, start: datetime, delta: timedelta
) -> None:
    due = calendar.add_working_time(start, delta)
    second = timedelta(seconds=1)
    at_end = delta > timedelta(0) and calendar.working_time_between(due - second, due) == second
    assert calendar.is_working_time(due) or at_end
    assert calendar.is_working_time(calendar.next_working_moment(start))


@SETTINGS
@given(calendars, moments, durations, durations)
def test_adding_is_monotonic(
    calendar: BusinessCalendar, start: datetime, one: timedelta, other: timedelta
) -> None:
    low, high = sorted((one, other))
    assert calendar.add_working_time(start, low) <= calendar.add_working_time(start, high)


@SETTINGS
@given(calendars, moments, st.integers(0, 8))
def test_working_days_land_on_working_time(
    calendar: BusinessCalendar, start: datetime, days: int
) -> None:
    due = calendar.add_working_days(start, days)
    assert calendar.is_working_time(due)
    assert due >= calendar.next_working_moment(start)
    assert calendar.is_working_day(due.astimezone(calendar.zone).date())
