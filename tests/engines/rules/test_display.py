"""Times in messages and task texts: rendered on the clinic's clock, in the text's locale;
texts for machines keep the stored UTC form."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError

from formloom.engines.rules import render_template, render_value
from formloom.engines.rules.display import LocalTime, localise

CONTEXT: dict[str, Any] = {
    "record": {
        "name": "Li Wei",
        "discharged_at": "2026-12-03T09:00:00Z",
        "visit_date": "2026-12-03",
        "slot": "09:30",
        "doctor": {"name": "Dr Wang", "on_call_from": "2026-12-03T23:30:00Z"},
        "visits": [{"at": "2026-11-30T01:15:00Z"}],
    },
    "old": None,
    "now": "2026-12-03T16:30:00Z",
}


def test_a_datetime_reads_as_the_clinics_wall_clock() -> None:
    text = {
        "en": "Discharged {{ record.discharged_at }}",
        "zh-CN": "出院时间 {{ record.discharged_at }}",
    }
    assert render_template(text, CONTEXT, "en", "Asia/Shanghai") == "Discharged 2026-12-03 17:00"
    assert render_template(text, CONTEXT, "zh-CN", "Asia/Shanghai") == "出院时间 2026-12-03 17:00"
    # another clinic, another clock
    assert render_template(text, CONTEXT, "en", "America/New_York") == (
        "Discharged 2026-12-03 04:00"
    )


def test_every_instant_in_the_context_is_local_and_dates_stay_dates() -> None:
    text = (
        "{{ record.visit_date }} {{ record.slot }} | {{ record.doctor.on_call_from }} | "
        "{{ record.visits[0].at }} | {{ now }}"
    )
    assert render_template(text, CONTEXT, "en", "Asia/Shanghai") == (
        "2026-12-03 09:30 | 2026-12-04 07:30 | 2026-11-30 09:15 | 2026-12-04 00:30"
    )


@pytest.mark.parametrize(
    ("template", "locale", "expected"),
    [
        ('{{ record.discharged_at | datetime("%H:%M") }}', "en", "17:00"),
        ("{{ record.discharged_at | datetime }}", "en", "2026-12-03 17:00"),
        ('{{ record.discharged_at | datetime("long") }}', "en", "Thursday 3 December 2026, 17:00"),
        ('{{ record.discharged_at | datetime("long") }}', "zh-CN", "2026年12月3日 星期四 17:00"),
        (
            '{{ record.discharged_at | datetime("%a %-d %b %H:%M %Z") }}',
            "en",
            "Thu 3 Dec 17:00 Asia/Shanghai",
        ),
        ('{{ record.discharged_at | datetime("%a %H:%M") }}', "zh-CN", "周四 17:00"),
        ("{{ record.discharged_at | date }}", "en", "2026-12-03"),
        ("{{ now | date }}", "en", "2026-12-04"),  # 00:30 the next day in Shanghai
        ('{{ record.discharged_at | date("long") }}', "zh-CN", "2026年12月3日"),
        ('{{ record.visit_date | date("long") }}', "en", "3 December 2026"),
        ('{{ record.visit_date | date("%d/%m") }}', "en", "03/12"),
        ('{{ record.visit_date | datetime("%A") }}', "zh-CN", "星期四"),
        ("{{ record.discharged_at | time }}", "en", "17:00"),
        ("{{ record.name | datetime }}", "en", "Li Wei"),  # not a time: as it is
    ],
)
def test_filters_format_in_the_locale_and_zone(template: str, locale: str, expected: str) -> None:
    assert render_template(template, CONTEXT, locale, "Asia/Shanghai") == expected


def test_without_a_zone_values_are_rendered_as_stored() -> None:
    # webhook bodies and headers: machines get ISO 8601 in UTC
    assert render_template("{{ record.discharged_at }}", CONTEXT) == "2026-12-03T09:00:00Z"
    assert render_value("{{ record.discharged_at }}", CONTEXT) == "2026-12-03T09:00:00Z"
    # the filters still work there, in UTC
    assert render_template('{{ record.discharged_at | datetime("%H:%M %Z") }}', CONTEXT) == (
        "09:00 UTC"
    )


def test_local_times_compare_as_instants_and_the_context_is_not_changed() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    local = localise(CONTEXT, zone)
    assert isinstance(local["record"]["discharged_at"], LocalTime)
    assert CONTEXT["record"]["discharged_at"] == "2026-12-03T09:00:00Z"
    text = "{{ 'after' if now > record.discharged_at else 'before' }}"
    assert render_template(text, CONTEXT, "en", "Asia/Shanghai") == "after"


def test_the_sandbox_still_holds_around_local_times() -> None:
    with pytest.raises(SecurityError):
        render_template(
            "{{ record.discharged_at.__class__.__mro__ }}", CONTEXT, "en", "Asia/Shanghai"
        )
