"""When schedule and date-relative rules are due.

The platform keeps the answers as durable timer rows; these functions only compute them.

* :func:`next_schedule_run` — the next run of a schedule rule (cron, or daily ``at``) after
  an instant, in the clinic's zone.
* :func:`date_due` — the moment a date-relative rule is due for one record: the record's
  date field plus ``offset``, at ``at`` (wall clock, clinic's zone); with ``every_year``
  the next anniversary after ``now``. ``None`` when the field is empty, so the platform
  deletes the record's timer; when the field changes it calls again and moves the timer.

Anniversaries of 29 February fall on 1 March in common years — the day
``years_between`` (the logic engine's age) counts the year as complete, so a birthday
message saying "you are now 40" is right on the day it is sent.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from formloom.engines.logic import LogicError
from formloom.engines.logic.dates import parse_temporal

from .cron import next_run
from .spec import DateTrigger, RuleSpec, ScheduleTrigger
from .timing import (
    InvalidTiming,
    add_duration,
    localize,
    parse_duration,
    parse_time_of_day,
    wall_clock,
)

__all__ = ["anniversary", "date_due", "next_schedule_run"]


def next_schedule_run(rule: RuleSpec, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first run of a schedule rule strictly after ``after`` (UTC)."""
    trigger = rule.on
    if not isinstance(trigger, ScheduleTrigger):
        raise TypeError(f"rule {rule.key!r} has no schedule trigger")
    if trigger.cron is not None:
        return next_run(trigger.cron, after, zone)
    if trigger.at is None:
        raise InvalidTiming(f"rule {rule.key!r}: a schedule needs 'cron' or 'at'")
    at = parse_time_of_day(trigger.at)
    return next_run(f"{at.minute} {at.hour} * * *", after, zone)


def anniversary(day: date, year: int) -> date:
    """``day``'s anniversary in ``year``; 29 February becomes 1 March in common years."""
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return day.replace(year=year)


def date_due(
    rule: RuleSpec, record: Mapping[str, Any], *, now: datetime, zone: ZoneInfo
) -> datetime | None:
    """When ``rule`` (a date-relative rule) is due for ``record``'s data, in UTC.

    A one-off moment is returned even if it has passed (the platform decides whether to
    catch up); with ``every_year`` it is the first anniversary strictly after ``now``.
    Raises :class:`InvalidTiming` when the field holds something that is not a date.
    """
    trigger = rule.on
    if not isinstance(trigger, DateTrigger):
        raise TypeError(f"rule {rule.key!r} has no date trigger")
    value = record.get(trigger.field)
    if value is None or value == "":
        return None
    try:
        base = parse_temporal(value, trigger.field)
    except LogicError as error:
        raise InvalidTiming(str(error)) from error
    offset = parse_duration(trigger.offset)
    at = parse_time_of_day(trigger.at) if trigger.at is not None else None
    if not trigger.every_year:
        return _moment(base, offset, at, zone)
    if isinstance(base, datetime):
        local = wall_clock(base, zone)
        day, clock = local.date(), local.time()
    else:
        day, clock = base, time()
    for year in range(now.astimezone(zone).year - 1, now.astimezone(zone).year + 3):
        start = anniversary(day, year)
        moment = _moment(datetime.combine(start, clock), offset, at, zone, local=True)
        if moment > now:
            return moment
    return None  # pragma: no cover - some anniversary in four years is always later


def _moment(
    base: date | datetime,
    offset: Any,
    at: time | None,
    zone: ZoneInfo,
    *,
    local: bool = False,
) -> datetime:
    if isinstance(base, datetime):
        start = localize(base, zone) if local else base.astimezone(UTC)
    else:
        start = localize(datetime.combine(base, time()), zone)
    if at is None:
        return add_duration(start, offset, zone)
    moved = add_duration(start, offset, zone)
    day = wall_clock(moved, zone).date()
    return localize(datetime.combine(day, at), zone)
