"""Stored instants as people read them: record titles on the clinic's clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from formloom.engines.forms import title_of
from formloom.engines.forms.localtime import instant_of, local_text, zone_name, zone_of
from tests.engines.forms.factory import field, make_form

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def test_an_appointment_is_titled_on_the_clinics_clock() -> None:
    appointment = make_form(field("starts_at", "datetime"), field("note"), title_field="starts_at")
    data = {"starts_at": "2026-12-04T02:00:00Z"}
    assert title_of(appointment, data, "en", SHANGHAI) == "2026-12-04 10:00"
    assert title_of(appointment, data, "zh-CN", SHANGHAI) == "2026-12-04 10:00"
    # the day changes with the zone: 02:00 UTC is the evening before in New York
    assert title_of(appointment, data, "en", NEW_YORK) == "2026-12-03 21:00"
    # a caller without a zone gets UTC, and says so
    assert title_of(appointment, data) == "2026-12-04 02:00 UTC"


def test_other_titles_are_not_touched_by_the_zone() -> None:
    visit = make_form(field("visit_date", "date"), title_field="visit_date")
    assert title_of(visit, {"visit_date": "2026-12-04"}, "en", SHANGHAI) == "2026-12-04"
    named = make_form(field("name"), title_field="name")
    # text shaped like an instant in a text field is text
    assert title_of(named, {"name": "2026-12-04T02:00:00Z"}, "en", SHANGHAI) == (
        "2026-12-04T02:00:00Z"
    )


def test_local_text() -> None:
    assert local_text("2026-12-04T02:00:00Z", SHANGHAI) == "2026-12-04 10:00"
    assert local_text("2026-12-04T02:00:05.5Z", SHANGHAI, seconds=True) == "2026-12-04 10:00:05"
    assert local_text("2026-12-04T02:00:00Z", SHANGHAI, named=True) == (
        "2026-12-04 10:00 (Asia/Shanghai)"
    )
    # daylight saving: the same UTC hour is 20:00 in July and 19:00 in January in New York
    assert local_text("2026-07-01T00:00:00Z", NEW_YORK) == "2026-06-30 20:00"
    assert local_text("2026-01-01T00:00:00Z", NEW_YORK) == "2025-12-31 19:00"
    for not_stored in (
        "2026-12-04",
        "10:00",
        "2026-12-04T02:00:00+08:00",
        "2026-02-30T00:00:00Z",
        7,
    ):
        assert local_text(not_stored, SHANGHAI) is None
    assert instant_of("2026-12-04T02:00:00Z") is not None


def test_zones_by_name() -> None:
    assert zone_of("Asia/Shanghai") == SHANGHAI
    assert zone_of(None) is UTC and zone_of("Not/AZone") is UTC
    assert zone_name(SHANGHAI) == "Asia/Shanghai" and zone_name(UTC) == "UTC"


ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe",
         "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham", "UTC")  # fmt: skip


def test_the_fast_path_agrees_with_zoneinfo() -> None:
    """local_text does arithmetic on days whose offset holds all day; it must give what
    ``astimezone`` gives, on transition days (half-hour and 45-minute zones too) and around
    midnights, month and year ends."""
    rng = random.Random(14)
    start = datetime(1900, 1, 1, tzinfo=UTC)
    span = 200 * 365 * 24 * 60
    moments = [start + timedelta(minutes=rng.randrange(0, span)) for _ in range(3000)]
    # every half hour across the 2026 transitions of New York, London and Lord Howe
    for first in ((2026, 3, 8), (2026, 3, 29), (2026, 4, 4), (2026, 10, 31)):
        day = datetime(*first, tzinfo=UTC)
        moments += [day + timedelta(minutes=30 * n) for n in range(4 * 48)]
    moments += [datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, 12, tzinfo=UTC)]
    for name in ZONES:
        zone = ZoneInfo(name)
        for moment in moments:
            stored = moment.isoformat()[:19] + "Z"
            expected = moment.astimezone(zone).isoformat(" ")[:19]
            assert local_text(stored, zone, seconds=True) == expected, (name, stored)
