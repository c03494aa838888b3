"""Times in messages and task texts: what ``{{ record.discharged_at }}`` reads as.

A rule's template context holds values as records store them, so a datetime is a UTC
instant in the stored form (``2026-12-03T09:00:00Z``). A message or a task is read by a
person, who reads the clinic's clock, so :func:`render_template` renders such texts with
the clinic's zone (``zone=``): before rendering, :func:`localise` replaces every instant in
the context — a record's datetime fields, ``old``, ``now``, related records, a flow's
variables — by a :class:`LocalTime`, a string that *is* its local text
(``2026-12-03 17:00``) and still knows its instant. Dates (``2026-12-03``) and times
(``09:00``) have no zone and stay as they are.

How a value is known to be a datetime
    By its form, not by the field types: only instants are stored as
    ``YYYY-MM-DDTHH:MM:SSZ`` (:data:`~formloom.engines.forms.localtime.STORED_INSTANT`;
    the forms engine normalises every datetime field to it, and the platform writes its
    stamps so). The shape holds wherever a value comes from — a related record, a flow
    variable, ``now`` — and in a context queued in the outbox before its form changed,
    where field types would have to be carried along and could be out of date.

Formats authors choose (filters, rendered in the message's locale)
    ``| datetime`` (``2026-12-03 17:00``), ``| datetime("long")`` (``Thursday 3 December
    2026, 17:00`` / ``2026年12月3日 星期四 17:00``), ``| datetime("%d/%m %H:%M")``,
    ``| date`` (``2026-12-03``), ``| date("long")`` (``3 December 2026`` / ``2026年12月3日``),
    ``| time`` (``17:00``). In a format, ``%A %a %B %b`` are the locale's names and ``%Z``
    names the zone (``Asia/Shanghai``). A date (not an instant) takes the same filters
    without a time of day.

A record in another zone than the deployment's (a branch elsewhere, docs/time-zones.md)
is rendered in its own zone with ``named=True``: its instants and the ``datetime`` and
``time`` filters name the zone after the time (``2026-12-05 10:00 (Asia/Urumqi)``, ``10:00
(Asia/Urumqi)``) unless the format names it already (``%Z``); dates are not named.

Texts for machines (webhook bodies and headers) are rendered without a zone and keep the
stored form; so is anything rendered by a caller that passes no zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from formloom.engines.forms.localtime import instant_of, zone_name
from formloom.engines.forms.values import parse_date

__all__ = ["LocalTime", "format_date", "format_datetime_as", "format_time", "localise"]


class LocalTime(str):
    """An instant as the clinic reads it: the string is the local text (``2026-12-03
    17:00``; ``named``: ``2026-12-03 17:00 (Asia/Urumqi)``); :attr:`moment` is the aware
    datetime in the clinic's zone, for the filters. Two of them compare as their instants
    do (same zone: the texts sort the same way)."""

    moment: datetime

    def __new__(cls, moment: datetime, named: bool = False) -> LocalTime:
        text = moment.strftime("%Y-%m-%d %H:%M")
        if named and moment.tzinfo is not None:
            text = f"{text} ({zone_name(moment.tzinfo)})"
        made = super().__new__(cls, text)
        made.moment = moment
        return made


def localise(value: Any, zone: tzinfo, named: bool = False) -> Any:
    """``value`` (a template context) with every stored instant in it made a
    :class:`LocalTime` in ``zone`` (``named``: its text names the zone); containers are
    copied, not changed."""
    if isinstance(value, str):
        moment = instant_of(value)
        return value if moment is None else LocalTime(moment.astimezone(zone), named)
    if isinstance(value, Mapping):
        return {key: localise(item, zone, named) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [localise(item, zone, named) for item in value]
    return value


# -- the filters ----------------------------------------------------------------------------

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh-CN": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
}
_SHORT_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
}
_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    "zh-CN": tuple(f"{n}月" for n in range(1, 13)),
}  # fmt: skip
_SHORT_MONTHS = {
    "en": tuple(name[:3] for name in _MONTHS["en"]),
    "zh-CN": _MONTHS["zh-CN"],
}
#: Named styles: (date and time, date only) per locale.
_LONG = {
    "en": ("%A %-d %B %Y, %H:%M", "%-d %B %Y"),
    "zh-CN": ("%Y年%-m月%-d日 %A %H:%M", "%Y年%-m月%-d日"),
}
_DIRECTIVE = re.compile(r"%(-?)([A-Za-z%])")


def _language(locale: str) -> str:
    return "zh-CN" if locale.lower().startswith("zh") else "en"


def _strftime(moment: date, pattern: str, locale: str, zone: tzinfo | None) -> str:
    """``strftime`` with the locale's day and month names, ``%Z`` as the zone's name, and
    ``%-d``-style unpadded numbers on every platform."""
    language = _language(locale)

    def one(match: re.Match[str]) -> str:
        unpadded, code = match.group(1), match.group(2)
        if code == "A":
            return _WEEKDAYS[language][moment.weekday()]
        if code == "a":
            return _SHORT_WEEKDAYS[language][moment.weekday()]
        if code == "B":
            return _MONTHS[language][moment.month - 1]
        if code == "b":
            return _SHORT_MONTHS[language][moment.month - 1]
        if code == "Z":
            return zone_name(zone) if zone is not None else ""
        if code == "%":
            return "%"
        if not isinstance(moment, datetime) and code in "HIMSpf":
            return ""  # a date has no time of day
        try:
            text = moment.strftime(f"%{code}")
        except ValueError:
            return match.group(0)
        if unpadded and text.isdigit():
            return str(int(text))
        return text

    return _DIRECTIVE.sub(one, pattern)


def _moment(value: Any, zone: tzinfo | None) -> datetime | date | None:
    """A :class:`LocalTime`'s moment, a stored instant in ``zone`` (UTC without one), or
    a date; ``None`` for anything else."""
    if isinstance(value, LocalTime):
        return value.moment
    if isinstance(value, datetime):
        return value.astimezone(zone or UTC) if value.tzinfo is not None else value
    if isinstance(value, date):
        return value
    moment = instant_of(value)
    if moment is not None:
        return moment.astimezone(zone or UTC)
    return parse_date(value) if isinstance(value, str) else None


def _naming(pattern: str, named: bool) -> str:
    """``pattern`` followed by the zone's name when it is to be named and does not name it."""
    return f"{pattern} (%Z)" if named and "%Z" not in pattern else pattern


def format_datetime_as(
    value: Any, pattern: str | None, locale: str, zone: tzinfo | None = None, named: bool = False
) -> Any:
    """The ``datetime`` filter: ``value`` in ``pattern`` (``None``: ``YYYY-MM-DD HH:MM``;
    ``"long"``: the locale's long form); a value that is no date or time is given back.
    ``named``: an instant's text names its zone (a date's does not)."""
    moment = _moment(value, zone)
    if moment is None:
        return value
    if pattern is None:
        pattern = "%Y-%m-%d %H:%M" if isinstance(moment, datetime) else "%Y-%m-%d"
    elif pattern == "long":
        long_both, long_date = _LONG[_language(locale)]
        pattern = long_both if isinstance(moment, datetime) else long_date
    own_zone = moment.tzinfo if isinstance(moment, datetime) else zone
    if isinstance(moment, datetime):
        pattern = _naming(pattern, named)
    return _strftime(moment, pattern, locale, own_zone or zone)


def format_date(
    value: Any, pattern: str | None, locale: str, zone: tzinfo | None = None, named: bool = False
) -> Any:
    """The ``date`` filter: the calendar date (of an instant: in the clinic's zone)."""
    moment = _moment(value, zone)
    if moment is None:
        return value
    day = moment.date() if isinstance(moment, datetime) else moment
    if pattern == "long":
        pattern = _LONG[_language(locale)][1]
    return _strftime(day, pattern or "%Y-%m-%d", locale, zone)


def format_time(
    value: Any, pattern: str | None, locale: str, zone: tzinfo | None = None, named: bool = False
) -> Any:
    """The ``time`` filter: the wall-clock time of an instant (``17:00``; ``named``:
    ``17:00 (Asia/Urumqi)``)."""
    moment = _moment(value, zone)
    if not isinstance(moment, datetime):
        return value
    return _strftime(moment, _naming(pattern or "%H:%M", named), locale, zone)
