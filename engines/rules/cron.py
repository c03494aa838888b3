"""A small cron parser: five fields, evaluated on a clinic's wall clock.

Why not APScheduler's ``CronTrigger``: it is untyped (``mypy --strict`` would need ignores),
numbers weekdays from Monday = 0 unlike crontab, and keeps scheduler state; the rule engine
needs only "parse and check this string" and "the next run after this instant", which is
~100 lines of pure code. The platform's APScheduler tick asks :func:`next_run` and keeps the
answer in the database.

Syntax (crontab(5)): ``minute hour day-of-month month day-of-week``; each field is ``*``, a
number, a range ``a-b``, a step ``*/n`` / ``a-b/n`` / ``a/n``, or a comma list of those;
months ``jan``-``dec`` and weekdays ``sun``-``sat`` by name; weekday 0 and 7 are Sunday. As
in cron, when both day-of-month and day-of-week are restricted a day matching either runs.
``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly`` are accepted.

Times are wall-clock times in the given zone (see :mod:`.timing`): a time skipped by a DST
change runs at the instant the gap's length later, and a repeated time runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .timing import InvalidTiming, localize, wall_clock

__all__ = ["CronSchedule", "next_run", "parse_cron"]

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
#: How far ahead :func:`next_run` looks (a 29 February schedule may wait eight years).
_HORIZON_DAYS = 366 * 9


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression: the allowed values of each field."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    day_restricted: bool
    weekday_restricted: bool

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_month or in_week
        return in_month and in_week


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise InvalidTiming(f"cron {field}: {text!r} is not a number or a name")
    number = int(text)
    if not low <= number <= high:
        raise InvalidTiming(f"cron {field}: {number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: dict[str, int], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidTiming(f"cron {field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _value(first, low, high, names, field)
            stop = _value(last, low, high, names, field)
            if stop < start:
                raise InvalidTiming(f"cron {field}: range {base!r} runs backwards")
        elif base:
            start = _value(base, low, high, names, field)
            stop = high if slash else start
        else:
            raise InvalidTiming(f"cron {field}: empty value in {text!r}")
        values.update(range(start, stop + 1, step))
    return values


def parse_cron(expression: str) -> CronSchedule:
    """Parse a five-field cron expression (or an ``@daily``-style macro)."""
    if not isinstance(expression, str):
        raise InvalidTiming("a cron expression must be a string")
    text = _MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise InvalidTiming(
            f"{expression!r} is not a cron expression: it needs 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    sets = [
        _field(part, low, high, names, name)
        for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(day % 7 for day in sets[4])
    return CronSchedule(
        expression=expression,
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=weekdays,
        day_restricted=parts[2] != "*",
        weekday_restricted=parts[4] != "*",
    )


def next_run(schedule: CronSchedule | str, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first run strictly after the aware instant ``after``, in UTC; ``None`` if never.

    Runs are enumerated on the wall clock of ``zone`` from ``after``'s local time on, and
    the first whose instant is later than ``after`` is returned.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    if isinstance(schedule, str):
        schedule = parse_cron(schedule)
    start = wall_clock(after, zone).replace(second=0, microsecond=0)
    day = start.date()
    for offset in range(_HORIZON_DAYS):
        current = day + timedelta(days=offset)
        if not schedule.runs_on(current):
            continue
        for hour in schedule.hours:
            if offset == 0 and hour < start.hour:
                continue
            for minute in schedule.minutes:
                if offset == 0 and hour == start.hour and minute < start.minute:
                    continue
                moment = localize(datetime(current.year, current.month, current.day, hour,
                                           minute), zone)  # fmt: skip
                if moment > after:
                    return moment
    return None
