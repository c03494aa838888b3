"""Date and time extensions of Formloom's JsonLogic: ``now``, ``today``, ``date_add``,
``days_between``, ``years_between``, ``hour_of``, ``weekday_of``.

Dates travel as ISO strings, exactly as records store them: a date is ``YYYY-MM-DD``; a
datetime is ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with ``Z`` or a ``±HH:MM`` offset (no offset
means UTC) and is always *returned* normalised to UTC, ``YYYY-MM-DDTHH:MM:SSZ``, so that text
order equals time order. Invariants:

* the evaluator never reads the clock when the caller passes ``now``; ``today`` is ``now``'s
  calendar date in ``now``'s own time zone (a clinic in Asia/Shanghai just after local
  midnight is already on the next day, although UTC is not);
* every function returns ``None`` when one of its inputs is ``None`` (an empty field);
* month and year arithmetic clamps to the last day of the month (Jan 31 + 1 month = Feb 28
  or 29), as every calendar user expects;
* malformed input raises :class:`InvalidArguments` with a message naming the operator;
* ``hour_of`` / ``weekday_of`` read an instant's wall clock in an IANA time zone (UTC when
  none is given): the hour 0-23 and the ISO weekday 1 (Monday) - 7 (Sunday), as a report's
  ``hour`` and ``weekday`` buckets count them. A date has no time of day: its hour is 0 and
  its weekday its own, whatever the zone.

Only the standard library (``datetime``) is used.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .coercion import describe, parse_number
from .errors import InvalidArguments

_UNITS = ("second", "minute", "hour", "day", "week", "month", "year")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def as_utc(now: datetime) -> datetime:
    """``now`` as an aware UTC datetime (a naive ``now`` is taken to be UTC already)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def format_datetime(moment: datetime) -> str:
    """The stored datetime format: UTC, whole seconds, ``Z`` suffix."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_string(now: datetime) -> str:
    return format_datetime(now)


def today_string(now: datetime) -> str:
    # An aware datetime's .date() is its calendar date in its own zone: the point of `today`.
    return now.date().isoformat()


def _is_date_text(text: str) -> bool:
    return len(text) == 10 and text[4] == "-" and text[7] == "-"


def parse_temporal(value: Any, operator: str) -> date | datetime:
    """A date (``YYYY-MM-DD``) or an aware datetime from its ISO text."""
    if not isinstance(value, str):
        raise InvalidArguments(
            f"{operator!r}: expected an ISO date or datetime string, got {describe(value)}"
        )
    try:
        if _is_date_text(value):
            return date.fromisoformat(value)
        if len(value) > 10 and _is_date_text(value[:10]) and value[10] in "Tt ":
            moment = datetime.fromisoformat(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    except ValueError:
        pass
    raise InvalidArguments(
        f"{operator!r}: {describe(value)} is not an ISO date (YYYY-MM-DD) "
        "or datetime (YYYY-MM-DDTHH:MM:SSZ)"
    )


def _calendar_date(value: Any, operator: str) -> date:
    moment = parse_temporal(value, operator)
    # "Datetimes use their date": the calendar date as written, in the string's own offset.
    return moment.date() if isinstance(moment, datetime) else moment


def _amount(value: Any, operator: str) -> int | float:
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        number = parse_number(value)
        if number is not None:
            return number
    raise InvalidArguments(f"{operator!r}: the amount {describe(value)} is not a number")


def _unit(value: Any, operator: str) -> str:
    if isinstance(value, str):
        unit = value.strip().lower()
        if unit.endswith("s") and unit[:-1] in _UNITS:
            unit = unit[:-1]
        if unit in _UNITS:
            return unit
    raise InvalidArguments(
        f"{operator!r}: unit must be one of {', '.join(_UNITS)}; got {describe(value)}"
    )


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the target month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise InvalidArguments("'date_add': the result is outside years 1-9999")
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def date_add(value: Any, amount: Any, unit: Any) -> str | None:
    """``value`` moved by ``amount`` ``unit``s; a date stays a date, a datetime a UTC datetime."""
    if value is None or amount is None or unit is None:
        return None
    op = "date_add"
    moment = parse_temporal(value, op)
    count = _amount(amount, op)
    name = _unit(unit, op)
    try:
        whole = float(count).is_integer()
        if name in ("month", "year"):
            if not whole:
                raise InvalidArguments(f"{op!r}: cannot add a fraction of a {name}")
            months = int(count) * (12 if name == "year" else 1)
            if isinstance(moment, datetime):
                moved = add_months(moment.date(), months)
                return format_datetime(moment.replace(moved.year, moved.month, moved.day))
            return add_months(moment, months).isoformat()
        if isinstance(moment, datetime):
            return format_datetime(moment + timedelta(seconds=count * _SECONDS[name]))
        if name not in ("day", "week") or not whole:
            raise InvalidArguments(
                f"{op!r}: {describe(value)} is a date; adding {describe(count)} {name}(s) "
                "needs a datetime (or whole days/weeks)"
            )
        return (moment + timedelta(days=int(count) * (7 if name == "week" else 1))).isoformat()
    except OverflowError as error:
        raise InvalidArguments(f"{op!r}: the result is outside years 1-9999") from error


def days_between(a: Any, b: Any) -> int | None:
    """Whole days from ``a`` to ``b`` (``b - a``); datetimes count by their calendar date."""
    if a is None or b is None:
        return None
    return (_calendar_date(b, "days_between") - _calendar_date(a, "days_between")).days


def years_between(a: Any, b: Any) -> int | None:
    """Whole years from ``a`` to ``b``, as an age is counted (negative when ``b`` is earlier).

    Someone born on 29 February turns a year older on 1 March in common years.
    """
    if a is None or b is None:
        return None
    start = _calendar_date(a, "years_between")
    end = _calendar_date(b, "years_between")
    if end < start:
        return -_whole_years(end, start)
    return _whole_years(start, end)


def _whole_years(start: date, end: date) -> int:
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def time_zone(value: Any, operator: str) -> ZoneInfo:
    """The IANA zone named ``value`` (for example ``Asia/Shanghai``)."""
    if isinstance(value, str) and value:
        try:
            return _zone(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidArguments(
        f"{operator!r}: {describe(value)} is not a time zone name (such as 'Asia/Shanghai')"
    )


def _wall_clock(value: Any, zone: Any, operator: str) -> date | datetime | None:
    if value is None or zone is None:
        return None
    moment = parse_temporal(value, operator)
    where = time_zone(zone, operator)
    if not isinstance(moment, datetime):
        return moment
    try:
        return moment.astimezone(where)
    except OverflowError as error:
        raise InvalidArguments(f"{operator!r}: the result is outside years 1-9999") from error


def hour_of(value: Any, zone: Any = "UTC") -> int | None:
    """The hour (0-23) of ``value``'s wall clock in ``zone``; 0 for a date."""
    moment = _wall_clock(value, zone, "hour_of")
    if moment is None:
        return None
    return moment.hour if isinstance(moment, datetime) else 0


def weekday_of(value: Any, zone: Any = "UTC") -> int | None:
    """The ISO weekday (1 = Monday ... 7 = Sunday) of ``value`` in ``zone``."""
    moment = _wall_clock(value, zone, "weekday_of")
    return None if moment is None else moment.isoweekday()
