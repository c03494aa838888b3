"""Stored value formats: the patterns, parsers and normalisers behind each field type.

Invariants of stored ``data`` (see docs/contracts.md): a date is ``YYYY-MM-DD``; a datetime is
UTC ``YYYY-MM-DDTHH:MM:SSZ`` (so text order is time order); a time is ``HH:MM`` or
``HH:MM:SS``. Incoming values are brought into these forms by the normalisers here before the
JSON Schema validator sees them; a value that cannot be brought into form raises
:class:`ValueProblem`. Normalisers only touch values of the expected Python type and pass
anything else through unchanged, so that the validator reports the type error.

The patterns are also written into the compiled JSON Schema, so clients can check values the
same way; checks a regular expression cannot make (a real calendar date) are made here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
# Deliberately practical rather than RFC 5322: one @, no spaces, a dot in the domain.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"
# Lenient international numbers: optional leading +, then 5-20 digits mixed with spaces,
# dashes and parentheses ("+86 (10) 1234-5678").
PHONE_PATTERN = r"^\+?[\s()-]*([0-9][\s()-]*){5,20}$"
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"

_DATE_RE = re.compile(DATE_PATTERN)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_TIME_RE = re.compile(TIME_PATTERN)


class ValueProblem(Exception):
    """A value that breaks a rule of its field; ``detail`` completes "<Label> ..."."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def parse_date(value: str) -> date | None:
    """The calendar date of a ``YYYY-MM-DD`` string, or ``None`` if it is not one."""
    if not _DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: str) -> datetime | None:
    """An aware datetime from an ISO 8601 string with an offset; ``None`` if not parseable.

    A string without an offset parses to a naive datetime, which the caller must reject.
    """
    text = value.strip()
    # fromisoformat accepts basic formats like "20240501"; demand the extended form.
    if len(text) < 16 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt ":
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_datetime(value: datetime) -> str:
    """The stored form of an aware datetime: UTC, whole seconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> time | None:
    """The time of an ``HH:MM`` or ``HH:MM:SS`` string, or ``None`` if it is not one."""
    if not _TIME_RE.match(value):
        return None
    return time.fromisoformat(value)


def normalise_date(value: Any) -> Any:
    if isinstance(value, str) and parse_date(value) is None:
        raise ValueProblem("format", "must be a date in the form YYYY-MM-DD")
    return value


def normalise_datetime(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if _DATETIME_RE.match(value):
        try:  # already in stored form: only the calendar needs checking
            datetime.fromisoformat(value[:-1])
        except ValueError:
            pass
        else:
            return value
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueProblem(
            "format",
            "must be a date and time such as 2024-05-01T09:30:00+08:00 or 2024-05-01T01:30:00Z",
        )
    if parsed.tzinfo is None:
        raise ValueProblem(
            "format",
            f"must include a time zone offset (such as +08:00, or Z for UTC): {value!r} has none",
        )
    try:
        return format_datetime(parsed)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC
        raise ValueProblem(
            "format", f"must fall within years 1-9999 in UTC: {value!r} does not"
        ) from None


def normalise_time(value: Any) -> Any:
    if isinstance(value, str) and parse_time(value) is None:
        raise ValueProblem("format", "must be a time in the form HH:MM or HH:MM:SS")
    return value


def normalise_trimmed(value: Any) -> Any:
    """Email and phone: surrounding whitespace is never meaningful."""
    return value.strip() if isinstance(value, str) else value


def normalise_integer(value: Any) -> Any:
    """``5.0`` is the integer 5 in JSON; store it as ``5``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def time_seconds(value: str) -> int:
    """Seconds since midnight of a valid ``HH:MM[:SS]`` string (for min/max comparisons)."""
    parts = value.split(":")
    return int(parts[0]) * 3600 + int(parts[1]) * 60 + (int(parts[2]) if len(parts) > 2 else 0)


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KB``; sizes in messages read better than byte counts."""
    amount = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(amount)} bytes"
            return f"{amount:.1f}".rstrip("0").rstrip(".") + f" {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def format_number(value: float | int) -> str:
    """``150.0`` -> ``150``: limits in messages without a spurious decimal part."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
