"""Texts of a record in another zone than the deployment's name the zone: instants and the
``datetime`` / ``time`` filters (not dates, not a format that names it already), in every
locale; without ``named`` nothing changes."""

from __future__ import annotations

from formloom.engines.rules import render_template

CONTEXT = {"record": {"starts_at": "2026-12-05T04:00:00Z", "day": "2026-12-05"}}


def render(text: str, locale: str = "en", *, named: bool = True) -> str:
    return render_template(text, CONTEXT, locale, "Asia/Urumqi", named=named)


def test_instants_and_times_name_the_zone() -> None:
    assert render("{{ record.starts_at }}") == "2026-12-05 10:00 (Asia/Urumqi)"
    assert render("{{ record.starts_at | datetime }}") == "2026-12-05 10:00 (Asia/Urumqi)"
    assert render("{{ record.starts_at | time }}") == "10:00 (Asia/Urumqi)"
    assert render("{{ record.starts_at | datetime('%H:%M') }}") == "10:00 (Asia/Urumqi)"
    assert render("{{ record.starts_at | datetime('long') }}", "zh-CN") == (
        "2026年12月5日 星期六 10:00 (Asia/Urumqi)"
    )


def test_dates_and_formats_naming_the_zone_are_not_named_twice() -> None:
    assert render("{{ record.starts_at | date }}") == "2026-12-05"
    assert render("{{ record.day | datetime }}") == "2026-12-05"
    assert render("{{ record.day }}") == "2026-12-05"
    assert render("{{ record.starts_at | datetime('%H:%M %Z') }}") == "10:00 Asia/Urumqi"


def test_without_named_the_zone_is_not_named() -> None:
    assert render("{{ record.starts_at }} {{ record.starts_at | time }}", named=False) == (
        "2026-12-05 10:00 10:00"
    )
