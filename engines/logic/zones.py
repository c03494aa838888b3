"""UTC offsets of an IANA time zone as data, for databases without time zone support.

PostgreSQL converts instants with ``AT TIME ZONE``. SQLite knows no zones, so the SQL
compilers (report buckets; ``hour_of`` and ``weekday_of`` in filters) write the zone's
history into the SQL: :func:`offset_periods` lists, from ``zoneinfo``, every period in which
the zone's UTC offset is constant (1900-2100: before the first change the first offset
applies, after the last the last), and the compiler turns the list into a balanced tree of
``CASE`` tests on the stored UTC text — about log2(n) comparisons per row (one for a zone
without changes since 1991 such as Asia/Shanghai: a few dozen periods, six comparisons; a
zone with daylight saving time: ~400 periods, nine).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["offset_periods", "settled_offset"]

_FIRST = datetime(1900, 1, 1, tzinfo=UTC)
_LAST = datetime(2100, 1, 1, tzinfo=UTC)
_STEP = timedelta(hours=12)
#: A zone whose last change comes before this kept its offset for the table's final year:
#: it has no daylight saving time (any more). Zones with DST change every year to 2100.
_SETTLED_BEFORE = "2099-01-01"


def _offset(zone: ZoneInfo, moment: datetime) -> int:
    delta = moment.astimezone(zone).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


@lru_cache(maxsize=64)
def offset_periods(time_zone: str) -> tuple[tuple[str, int], ...]:
    """``((start, offset_seconds), ...)`` for ``time_zone``: from ``start`` (UTC text
    ``YYYY-MM-DDTHH:MM:SSZ``, the stored datetime format; ``""`` for the first period) on,
    local time is UTC + ``offset_seconds``. Raises ``ZoneInfoNotFoundError`` for an
    unknown zone."""
    zone = ZoneInfo(time_zone)
    periods: list[tuple[str, int]] = [("", _offset(zone, _FIRST))]
    current = periods[0][1]
    moment = _FIRST
    while moment < _LAST:
        following = moment + _STEP
        offset = _offset(zone, following)
        if offset != current:
            low, high = moment, following  # the change lies in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if _offset(zone, middle) == current:
                    low = middle
                else:
                    high = middle
            periods.append((high.strftime("%Y-%m-%dT%H:%M:%SZ"), offset))
            current = offset
        moment = following
    return tuple(periods)


def settled_offset(time_zone: str) -> tuple[str, int] | None:
    """``(since, offset_seconds)`` when ``time_zone`` has kept one UTC offset from ``since``
    (UTC text; ``""`` if it never changed) on: no daylight saving time any more, as in
    Asia/Shanghai since 1991. ``None`` for a zone that still changes its offset.

    Most records lie in that last period, so the compilers test it first: local time is then
    the UTC time plus a constant, which costs a fraction of a zone conversion."""
    since, offset = offset_periods(time_zone)[-1]
    return (since, offset) if since < _SETTLED_BEFORE else None
