"""Stored instants as people read them: the wall clock of the clinic's zone.

Records keep a datetime as a UTC instant in one stored form (``2026-12-04T02:00:00Z``,
:func:`~formloom.engines.forms.values.format_datetime`), and so do the platform's own stamps
(``created_at``, ``updated_at``, a rule's ``now``); the API answers with that form. What a
person reads is the same instant on the clinic's clock: ``2026-12-04 10:00`` in
Asia/Shanghai. This module turns one into the other.

Invariants
    * The zone is an argument (the platform's ``settings.timezone``); nothing here reads a
      clock, an environment variable or the machine's zone.
    * Only the stored form is recognised (:data:`STORED_INSTANT`: date, ``T``, whole or
      fractional seconds, ``Z``). A date (``2026-12-04``), a time (``10:00``) or text with
      an offset is not an instant in the stored form and is left as it is — a date has no
      zone, and nothing the platform stores carries an offset.
    * The local text is ``YYYY-MM-DD HH:MM`` (24-hour, zero-padded), the same in every
      language, so it sorts as the instants do and reads unambiguously in both en and zh-CN.
      The zone is named by the page or header around it, or by :func:`local_text` with
      ``named=True`` where a lone value could be read in another zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "STORED_INSTANT",
    "instant_of",
    "local_text",
    "zone_name",
    "zone_of",
]

#: The stored form of an instant: what every datetime field and system stamp holds.
STORED_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def instant_of(value: Any) -> datetime | None:
    """The aware UTC datetime of a value in the stored form, else ``None``."""
    if not isinstance(value, str) or value[-1:] != "Z" or not STORED_INSTANT.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)  # "Z": UTC (Python 3.11+)
    except ValueError:  # shaped like one but not a real date (2026-02-30)
        return None


def zone_of(name: str | tzinfo | None) -> tzinfo:
    """A zone from its IANA name (``None`` or an unknown name: UTC)."""
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name(zone: tzinfo) -> str:
    """What to call a zone where it is named: its IANA key (``Asia/Shanghai``)."""
    key = getattr(zone, "key", None)
    if isinstance(key, str):
        return key
    return "UTC" if zone is UTC else (zone.tzname(None) or "UTC")


def local_text(
    value: Any, zone: tzinfo, *, seconds: bool = False, named: bool = False
) -> str | None:
    """``2026-12-04 10:00`` for ``2026-12-04T02:00:00Z`` in Asia/Shanghai; ``None`` when
    ``value`` is not an instant in the stored form. ``seconds`` adds ``:SS``; ``named`` adds
    the zone: ``2026-12-04 10:00 (Asia/Shanghai)``."""
    if not isinstance(value, str) or not STORED_INSTANT.fullmatch(value):
        return None
    day = _day(value[:10], zone)
    minute_of_day = _MINUTE_OF.get(value[11:16])
    if day is None or minute_of_day is None:  # no real date or time, or the offset changes
        moment = instant_of(value)
        if moment is None:
            return None
        try:
            text = moment.astimezone(zone).isoformat(" ")[: 19 if seconds else 16]
        except OverflowError:  # before year 1 or after 9999 on this clock
            return None
    else:
        # the offset holds all day: the wall clock is arithmetic on the text (a list page
        # shows hundreds of these; datetime objects, strftime and replace cost ~5x more)
        offset, dates = day
        carry, minute = divmod(minute_of_day + offset, 1440)
        text = f"{dates[carry + 1]} {_CLOCK[minute]}"
        if seconds:
            text = f"{text}:{value[17:19]}"
    return f"{text} ({zone_name(zone)})" if named else text


#: "HH:MM" of each minute of a day.
_CLOCK = [f"{hour:02d}:{minute:02d}" for hour in range(24) for minute in range(60)]
_MINUTE_OF = {text: minute for minute, text in enumerate(_CLOCK)}


@lru_cache(maxsize=4096)
def _day(day: str, zone: tzinfo) -> tuple[int, tuple[str, str, str]] | None:
    """For a UTC calendar day: the zone's offset in minutes when it is the same all day
    (most days of every zone: the offsets at its start, noon and end agree), with the dates
    of the day before, the day and the day after; ``None`` when it changes during the day,
    is not whole minutes, or ``day`` is no date."""
    try:
        start = datetime.fromisoformat(f"{day}T00:00:00+00:00")
        offsets = {
            (start + timedelta(seconds=second)).astimezone(zone).utcoffset()
            for second in (0, 43_200, 86_399)
        }
        dates = tuple((start.date() + timedelta(days=n)).isoformat() for n in (-1, 0, 1))
    except (ValueError, OverflowError):  # no date, or the first or last day there is
        return None
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    if offset is None or offset.total_seconds() % 60:
        return None
    return int(offset.total_seconds()) // 60, (dates[0], dates[1], dates[2])
