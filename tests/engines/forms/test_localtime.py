"""Stored instants as people read them: record titles on the clinic's clock."""

from __future__ import annotations

from datetime import UTC
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
