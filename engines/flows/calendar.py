"""Business calendars: working days, working hours and due times counted in working time.

A clinic's due times are stated in working time: "within 48 working hours", "a call on
day 3, due in 2 working days", an escalation "after 4 working hours". A
:class:`CalendarSpec` (part of the app definition) says which days and hours are worked;
a :class:`BusinessCalendar` built from it and the clinic's zone answers the arithmetic.
Peers: Camunda's business calendar, Jiandaoyun's workday settings.

* A *working day* is a date listed in ``workdays`` (a make-up working day, 调休: a
  Saturday worked after a public holiday), or a date whose weekday is in ``days`` and
  that is not listed in ``holidays``. No date is in both lists.
* *Working time* is, on each working day, the instants whose local wall-clock time is in
  one of the ``hours`` intervals ``[start, end)``. Intervals are wall-clock times in the
  calendar's zone, each boundary converted to a real instant as the *first instant at
  which the clock reads that time or later*: an ordinary time is its
  :func:`~formloom.engines.rules.timing.localize` instant, an ambiguous one (fall back)
  its first occurrence, and one in the spring-forward gap the instant of the jump (not
  ``localize``'s "moved forward by the gap", which would put 02:30 after 03:00 and make
  intervals overlap). So on a DST change day an interval 01:00-04:00 in New York lasts 2
  real hours in spring and 4 in autumn, and an interval inside the gap is empty. All
  arithmetic is on real instants, so results are correct across DST.
* ``BusinessCalendar.always(zone)`` is "no calendar": every instant is working time, so
  working hours are elapsed hours and ``add_working_days`` is "the same clock time N
  calendar days later" (as ``P{N}D`` in the rules).

Invariants:

* every method takes aware datetimes (naive ones: :class:`ValueError`) and returns aware
  UTC datetimes; the library reads no clock and does no I/O;
* ``add_working_time(t, 0) == next_working_moment(t)``; for ``d > 0`` the result is where
  ``d`` of working time after ``t`` is used up, and when that happens exactly at the end
  of an interval the result is that end (17:00), not the next interval's start;
* ``working_time_between(t, add_working_time(t, d)) == d``, ``add_working_time`` is
  monotonic in ``d``, and ``add_working_time(add_working_time(t, a), b) ==
  add_working_time(t, a + b)`` for ``b > 0``;
* iteration is per working interval, never per minute, and a calendar without a working
  interval for more than :data:`MAX_IDLE_DAYS` days in a row raises :class:`ValueError`
  rather than searching forever.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal, Self, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from formloom.engines.rules.timing import localize, wall_clock, zone_named

__all__ = [
    "MAX_IDLE_DAYS",
    "BusinessCalendar",
    "CalendarSpec",
    "Weekday",
]

#: The most consecutive days without working time a search crosses before giving up.
MAX_IDLE_DAYS = 366 * 5

Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MINUTES_PER_DAY = 24 * 60

Span: TypeAlias = tuple[date, date]
Interval: TypeAlias = tuple[datetime, datetime]


# ---------------------------------------------------------------------------------------
# Parsing and validation of the spec's strings
# ---------------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    """Minutes after midnight of ``"HH:MM"`` (``"24:00"`` is 1440)."""
    return _MINUTES_PER_DAY if text == "24:00" else int(text[:2]) * 60 + int(text[3:])


def _check_start(text: str) -> str:
    if text == "24:00":
        raise ValueError("'24:00' may only end an interval (it means the next midnight)")
    if not _CLOCK.match(text):
        raise ValueError(f"{text!r} is not a time of day in 24-hour HH:MM form (e.g. '09:00')")
    return text


def _check_end(text: str) -> str:
    if text != "24:00" and not _CLOCK.match(text):
        raise ValueError(
            f"{text!r} is not a time of day in 24-hour HH:MM form (e.g. '17:00', or '24:00')"
        )
    return text


def _check_interval(interval: tuple[str, str]) -> tuple[str, str]:
    start, end = interval
    if _minutes(end) <= _minutes(start):
        raise ValueError(
            f"the interval {start}-{end} ends before it starts "
            "(an interval cannot cross midnight: split it as ..-24:00 and 00:00-..)"
        )
    return interval


def _parse_date(text: str) -> date:
    if not _DATE.match(text):
        raise ValueError(f"{text!r} is not a date in YYYY-MM-DD form (e.g. '2026-10-01')")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


def _parse_span(text: str) -> Span:
    """``"2026-10-01"`` or the inclusive range ``"2026-10-01/2026-10-07"`` as (first, last)."""
    first_text, slash, last_text = text.partition("/")
    first = _parse_date(first_text)
    if not slash:
        return first, first
    last = _parse_date(last_text)
    if last < first:
        raise ValueError(f"the range {text!r} ends before it starts")
    return first, last


def _check_span(text: str) -> str:
    _parse_span(text)
    return text


_Start = Annotated[str, AfterValidator(_check_start)]
_End = Annotated[str, AfterValidator(_check_end)]
_Hours = Annotated[tuple[_Start, _End], AfterValidator(_check_interval)]
_DateOrRange = Annotated[str, AfterValidator(_check_span)]

_SPAN_HELP = "a date 'YYYY-MM-DD' or an inclusive range 'YYYY-MM-DD/YYYY-MM-DD'"


# ---------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------


class CalendarSpec(BaseModel):
    """Which days and hours a clinic works: the data behind a :class:`BusinessCalendar`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    zone: str | None = Field(
        default=None,
        description=(
            "IANA time zone of the working hours ('Asia/Shanghai'); omitted: the clinic's zone."
        ),
    )
    days: list[Weekday] = Field(
        default=["mon", "tue", "wed", "thu", "fri"],
        description="Weekdays that are working days ('mon' ... 'sun'), each at most once.",
    )
    hours: list[_Hours] = Field(
        default=[("09:00", "17:00")],
        description=(
            "Working intervals of a working day as [start, end] in 24-hour 'HH:MM' local "
            "time, end after start ('24:00' ends at midnight), sorted and not overlapping; "
            "e.g. [['09:00', '12:00'], ['13:00', '17:00']] for a lunch break."
        ),
    )
    holidays: list[_DateOrRange] = Field(
        default=[],
        description=(
            f"Days off even on a working weekday: each {_SPAN_HELP} ('2026-10-01/2026-10-07')."
        ),
    )
    workdays: list[_DateOrRange] = Field(
        default=[],
        description=(
            f"Make-up working days (调休), worked even on a weekend: each {_SPAN_HELP} "
            "('2026-10-10'); no date may also be a holiday."
        ),
    )

    @field_validator("zone")
    @classmethod
    def _check_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            zone_named(zone)
        return zone

    @field_validator("days")
    @classmethod
    def _check_days(cls, days: list[Weekday]) -> list[Weekday]:
        repeated = sorted({day for day in days if days.count(day) > 1}, key=_WEEKDAYS.index)
        if repeated:
            raise ValueError(f"each weekday may be listed once: {', '.join(repeated)} repeated")
        return days

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, hours: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not hours:
            raise ValueError("at least one working interval is needed, e.g. ['09:00', '17:00']")
        for index in range(1, len(hours)):
            (start_a, end_a), (start_b, end_b) = hours[index - 1], hours[index]
            if _minutes(start_b) < _minutes(end_a):
                problem = "overlaps" if _minutes(start_b) >= _minutes(start_a) else "comes before"
                raise ValueError(
                    f"hours[{index}] {start_b}-{end_b} {problem} hours[{index - 1}] "
                    f"{start_a}-{end_a}: intervals must be sorted and must not overlap"
                )
        return hours

    @field_validator("workdays")
    @classmethod
    def _check_workdays(cls, workdays: list[str], info: ValidationInfo) -> list[str]:
        holidays: list[str] = info.data.get("holidays", [])
        for index, text in enumerate(workdays):
            first, last = _parse_span(text)
            for other, holiday in enumerate(holidays):
                start, end = _parse_span(holiday)
                if first <= end and start <= last:
                    both = max(first, start).isoformat()
                    raise ValueError(
                        f"workdays[{index}] {text!r} and holidays[{other}] {holiday!r} both "
                        f"contain {both}: a date is either a holiday or a make-up working day"
                    )
        return workdays


# ---------------------------------------------------------------------------------------
# The calendar
# ---------------------------------------------------------------------------------------


def _spans(texts: list[str]) -> tuple[Span, ...]:
    """The dates of ``texts`` as sorted, merged, inclusive spans."""
    merged: list[Span] = []
    for first, last in sorted(_parse_span(text) for text in texts):
        if merged and first <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def _contains(spans: tuple[Span, ...], firsts: list[date], day: date) -> bool:
    index = bisect_right(firsts, day) - 1
    return index >= 0 and spans[index][1] >= day


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got the naive {moment.isoformat()})")
    return moment.astimezone(UTC)


def _first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which the clock in ``zone`` reads ``wall`` or later (UTC)."""
    instant = localize(wall, zone)
    if wall_clock(instant, zone) == wall:
        return instant  # an ordinary time, or the first occurrence of an ambiguous one
    # In the spring-forward gap: the clock jumps over ``wall`` at the transition, which
    # lies between the instants the offsets after (fold=1) and before (fold=0) give.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = sorted((int(other.timestamp()), int(instant.timestamp())))
    if wall_clock(datetime.fromtimestamp(low, UTC), zone) >= wall:
        return datetime.fromtimestamp(low, UTC)
    while high - low > 1:  # wall_clock(low) < wall <= wall_clock(high); about 12 steps
        middle = (low + high) // 2
        if wall_clock(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _next_day(day: date) -> date:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        raise ValueError("the search for working time passed the last supported date") from None


#: :meth:`BusinessCalendar.always` by class and zone.
_ALWAYS: dict[tuple[type, str], Any] = {}


class BusinessCalendar:
    """Working-time arithmetic for a :class:`CalendarSpec` in a time zone (see the module).

    ``zone`` is the clinic's zone, used when ``spec.zone`` is None; a ``spec.zone`` wins.
    """

    def __init__(self, spec: CalendarSpec, zone: ZoneInfo) -> None:
        if not isinstance(spec, CalendarSpec):
            raise TypeError(f"spec must be a CalendarSpec, not {type(spec).__name__}")
        if not isinstance(zone, ZoneInfo):
            raise TypeError(f"zone must be a ZoneInfo, not {type(zone).__name__}")
        self._spec = spec
        self._zone = zone_named(spec.zone) if spec.zone is not None else zone
        self._weekdays = frozenset(_WEEKDAYS.index(day) for day in spec.days)
        self._hours = tuple((_minutes(start), _minutes(end)) for start, end in spec.hours)
        self._holidays = _spans(spec.holidays)
        self._holiday_firsts = [first for first, _ in self._holidays]
        self._workdays = _spans(spec.workdays)
        self._workday_firsts = [first for first, _ in self._workdays]
        # Every instant is working time: the day intervals tile the time line.
        self._continuous = (
            len(self._weekdays) == 7
            and self._hours == ((0, _MINUTES_PER_DAY),)
            and not spec.holidays
        )
        self._day_intervals: Callable[[date], tuple[Interval, ...]] = lru_cache(maxsize=4096)(
            self._compute_day_intervals
        )

    @classmethod
    def always(cls, zone: ZoneInfo) -> Self:
        """ "No calendar": every instant is working time (24x7, no holidays).

        Working hours are elapsed hours (a spring-forward day has 23 of them), and
        ``add_working_days(t, n)`` is the same local clock time ``n`` calendar days later.
        """
        found = _ALWAYS.get((cls, zone.key))
        if found is None:  # calendars never change once built: one per zone is enough
            found = cls(CalendarSpec(days=list(_WEEKDAYS), hours=[("00:00", "24:00")]), zone)
            _ALWAYS[(cls, zone.key)] = found
        return found

    @property
    def spec(self) -> CalendarSpec:
        """The spec the calendar was built from."""
        return self._spec

    @property
    def zone(self) -> ZoneInfo:
        """The zone the working hours are read in (``spec.zone``, else the clinic's)."""
        return self._zone

    def __repr__(self) -> str:
        return f"BusinessCalendar({self._spec!r}, zone={self._zone.key!r})"

    # -- days ------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """A make-up working day, or a weekday in ``days`` that is not a holiday."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"day must be a date, not {type(day).__name__}")
        if _contains(self._workdays, self._workday_firsts, day):
            return True
        if _contains(self._holidays, self._holiday_firsts, day):
            return False
        return day.weekday() in self._weekdays

    def _compute_day_intervals(self, day: date) -> tuple[Interval, ...]:
        if not self.is_working_day(day):
            return ()
        midnight = datetime.combine(day, time())
        intervals: list[Interval] = []
        for start, end in self._hours:
            first = _first_instant(midnight + timedelta(minutes=start), self._zone)
            last = _first_instant(midnight + timedelta(minutes=end), self._zone)
            if last > first:  # an interval inside a DST gap is empty
                intervals.append((first, last))
        return tuple(intervals)

    def _intervals(self, after: datetime, until: datetime | None = None) -> Iterator[Interval]:
        """The real working intervals ending after ``after``, in order.

        Stops at the first day starting at or after ``until``; without ``until``, raises
        after :data:`MAX_IDLE_DAYS` consecutive days without working time.
        """
        try:
            # Start a day early: no interval of an earlier day can end after ``after``.
            day = wall_clock(after, self._zone).date() - timedelta(days=1)
            idle = 0
            while True:
                intervals = self._day_intervals(day)
                if (
                    until is not None
                    and (intervals[0][0] if intervals else self._midnight(day)) >= until
                ):
                    return
                for interval in intervals:
                    if interval[1] > after:
                        yield interval
                idle = 0 if intervals else idle + 1
                if idle > MAX_IDLE_DAYS and until is None:
                    raise ValueError(
                        f"the calendar has no working time in the {MAX_IDLE_DAYS} days up to "
                        f"{day.isoformat()}: check its days, hours, holidays and workdays"
                    )
                day = _next_day(day)
        except OverflowError:
            raise ValueError("the moment is outside the supported range of dates") from None

    def _midnight(self, day: date) -> datetime:
        return _first_instant(datetime.combine(day, time()), self._zone)

    # -- moments ---------------------------------------------------------------------

    def is_working_time(self, moment: datetime) -> bool:
        """Whether ``moment`` lies inside a working interval (an interval's end does not)."""
        instant = _aware(moment, "moment")
        return self.next_working_moment(instant) == instant

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself inside working time, else the start of the next working interval."""
        instant = _aware(moment, "moment")
        if self._continuous:
            return instant
        for start, _end in self._intervals(instant):
            return max(start, instant)
        raise AssertionError("unreachable: _intervals ends only with until")  # pragma: no cover

    def add_working_time(self, moment: datetime, delta: timedelta) -> datetime:
        """The instant ``delta`` of working time after ``moment``.

        ``delta`` 0 gives :meth:`next_working_moment`; when ``delta`` is used up exactly at
        an interval's end, the result is that end (Friday 17:00, not Monday 09:00).
        """
        instant = _aware(moment, "moment")
        if not isinstance(delta, timedelta):
            raise TypeError(f"delta must be a timedelta, not {type(delta).__name__}")
        if delta < timedelta(0):
            raise ValueError(f"delta must not be negative (got {delta})")
        if delta == timedelta(0):
            return self.next_working_moment(instant)
        if self._continuous:
            return instant + delta
        remaining = delta
        for start, end in self._intervals(instant):
            begin = max(start, instant)
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable: _intervals ends only with until")  # pragma: no cover

    def add_working_hours(self, moment: datetime, hours: int | float) -> datetime:
        """:meth:`add_working_time` with ``hours`` hours (``>= 0``, may be fractional)."""
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise TypeError(f"hours must be a number, not {type(hours).__name__}")
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number >= 0 (got {hours})")
        return self.add_working_time(moment, timedelta(hours=hours))

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """``days`` working days later at the same local clock time.

        From :meth:`next_working_moment` of ``moment``, move ``days`` working days forward
        keeping its clock time; if that time is not working time on the target day (a DST
        gap, or differently shaped days), the next working moment after it. ``days`` 0
        gives :meth:`next_working_moment`. Friday 16:00 + 2 is Tuesday 16:00; Saturday
        10:00 + 2 is Wednesday 09:00 (Monday 09:00 is the next working moment).
        """
        instant = _aware(moment, "moment")
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"days must be an int, not {type(days).__name__}")
        if days < 0:
            raise ValueError(f"days must not be negative (got {days})")
        start = self.next_working_moment(instant)
        if days == 0:
            return start
        wall = wall_clock(start, self._zone)
        day, remaining, idle = wall.date(), days, 0
        while remaining:
            day = _next_day(day)
            if self.is_working_day(day):
                remaining, idle = remaining - 1, 0
            else:
                idle += 1
                if idle > MAX_IDLE_DAYS:
                    raise ValueError(
                        f"the calendar has no working day in the {MAX_IDLE_DAYS} days up to "
                        f"{day.isoformat()}: check its days, holidays and workdays"
                    )
        try:
            target = localize(datetime.combine(day, wall.time()), self._zone)
        except OverflowError:
            raise ValueError("the result is outside the supported range of dates") from None
        return self.next_working_moment(target)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time inside ``[start, end)``; zero when ``end <= start``."""
        first, last = _aware(start, "start"), _aware(end, "end")
        if last <= first:
            return timedelta(0)
        if self._continuous:
            return last - first
        total = timedelta(0)
        for begin, finish in self._intervals(first, until=last):
            if begin >= last:
                break
            total += min(finish, last) - max(begin, first)
        return total
