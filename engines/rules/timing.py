"""Durations, times of day and wall-clock arithmetic in a clinic's time zone.

Rules speak the clinic's language: "3 days after", "at 09:00", "every day at 08:30". Those
are *wall-clock* statements, so the calendar part of a duration (years, months, weeks, days)
is added to the local date and time, and only the clock part (hours, minutes, seconds) is
added as elapsed time: "P1D" after 09:00 the day before a DST change is 09:00 the next day,
"PT24H" is 24 real hours later.

Invariants:

* every function takes aware datetimes and returns aware UTC datetimes;
* a local time that does not exist (the spring-forward gap) is moved forward by the gap
  (02:30 in New York on the change day becomes 03:30 EDT); an ambiguous one (fall back)
  means its first occurrence;
* month arithmetic clamps to the month's last day, as :mod:`formloom.engines.logic.dates`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from formloom.engines.logic.dates import add_months

__all__ = [
    "SKIP_GRACE",
    "Duration",
    "InvalidTiming",
    "add_duration",
    "late_limit",
    "too_late",
    "localize",
    "parse_duration",
    "parse_time_of_day",
    "zone_named",
]

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?"
    r"(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_TIME = re.compile(r"^(?P<hour>[01]\d|2[0-3]):(?P<minute>[0-5]\d)$")


class InvalidTiming(ValueError):
    """A duration, time of day, cron expression or zone name that cannot be parsed."""


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration split into its calendar part and its clock part (both signed)."""

    months: int = 0
    days: int = 0
    seconds: int = 0


def parse_duration(text: str) -> Duration:
    """``"P3D"``, ``"-P1D"``, ``"PT24H"``, ``"P1Y2M"``, ``"P2W"`` ... as a :class:`Duration`."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    parts = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
    if match is None or not any(match.group(name) for name in parts):
        raise InvalidTiming(
            f"{text!r} is not an ISO 8601 duration (e.g. 'P3D', '-P1D', 'PT24H', 'P1Y')"
        )
    if text.endswith("T"):
        raise InvalidTiming(f"{text!r} is not an ISO 8601 duration ('T' needs a time part)")
    part = {name: int(match.group(name) or 0) for name in parts}
    sign = -1 if match.group("sign") == "-" else 1
    return Duration(
        months=sign * (part["years"] * 12 + part["months"]),
        days=sign * (part["weeks"] * 7 + part["days"]),
        seconds=sign * (part["hours"] * 3600 + part["minutes"] * 60 + part["seconds"]),
    )


def parse_time_of_day(text: str) -> time:
    """``"09:00"`` (24-hour ``HH:MM``) as a :class:`datetime.time`."""
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidTiming(f"{text!r} is not a time of day in 24-hour HH:MM form (e.g. '09:00')")
    return time(int(match.group("hour")), int(match.group("minute")))


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``"Asia/Shanghai"``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidTiming(f"{name!r} is not an IANA time zone") from error


def localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive local ``wall`` time in ``zone`` (gap: moved forward)."""
    # fold=0 gives the first occurrence of an ambiguous time, and for a time in the gap the
    # offset before the change, i.e. the instant the gap's length later on the wall clock.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time of the aware ``moment`` in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def add_duration(moment: datetime, duration: Duration, zone: ZoneInfo) -> datetime:
    """``moment`` moved by ``duration``: the calendar part on the wall clock, then the rest."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    result = moment.astimezone(UTC)
    if duration.months or duration.days:
        wall = wall_clock(moment, zone)
        day = add_months(wall.date(), duration.months) if duration.months else wall.date()
        day += timedelta(days=duration.days)
        result = localize(datetime.combine(day, wall.time()), zone)
    return result + timedelta(seconds=duration.seconds)


#: How late ``late: "skip"`` still fires: the worker's own delays (its tick, a restart).
SKIP_GRACE = timedelta(minutes=15)


def late_limit(policy: str) -> timedelta | None:
    """How late a trigger with ``late: policy`` still fires (``None``: however late).

    ``"run"``, ``"skip"`` (:data:`SKIP_GRACE`) or a positive ISO 8601 duration of days and
    clock time (``"PT6H"``, ``"P2D"``; months and years have no fixed length and are refused).
    """
    if policy == "run":
        return None
    if policy == "skip":
        return SKIP_GRACE
    duration = parse_duration(policy)
    if duration.months or duration.days < 0 or duration.seconds < 0:
        raise InvalidTiming(
            f"{policy!r} is not a late policy: 'run', 'skip' or a positive duration in days, "
            "hours or minutes (e.g. 'PT6H', 'P1D')"
        )
    return timedelta(days=duration.days, seconds=duration.seconds)


def too_late(policy: str, due: datetime, now: datetime, armed: datetime | None = None) -> bool:
    """Whether a moment ``due`` reached only at ``now`` is skipped under ``policy``.

    Lateness counts from the moment, or from when the timer was ``armed`` if that was
    after it: a record entered late (a discharge typed in two days after) is not late, a
    worker that was down is."""
    limit = late_limit(policy)
    if limit is None:
        return False
    start = max(due, armed) if armed is not None else due
    return now - start > limit
