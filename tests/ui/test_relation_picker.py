"""The relation picker in Chromium, in English and Chinese: namesakes told apart by a second
line (phone, birth date; a select's label in the reader's language), exact matches above
prefixes above the rest, nothing highlighted until ↓, Enter picks, Esc closes, and the picked
record's title and second line shown once picked (also when the page opens with one)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, create, unique_phone

OPTIONS = "[role=listbox]:visible [role=option]"


def _word() -> str:
    """A made-up surname no demo record has, so the test's own records are all it finds."""
    return "Q" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))


def _namesakes(live_server: LiveServer) -> dict[str, Any]:
    """Two patients of the same name, one whose name starts with it, one holding it."""
    name = f"He {_word()}"
    older = create(
        live_server, "patient", {"name": name, "phone": unique_phone(), "birth_date": "1990-01-15"}
    )
    newer = create(
        live_server, "patient", {"name": name, "phone": unique_phone(), "birth_date": "2001-11-30"}
    )
    create(live_server, "patient", {"name": f"{name}son", "phone": unique_phone()})
    create(live_server, "patient", {"name": f"Ma {name}", "phone": unique_phone()})
    return {"name": name, "older": older, "newer": newer}


def _second_line(record: dict[str, Any]) -> str:
    return f"{record['data']['phone']} · {record['data']['birth_date']}"


def _wait_options(page: Any, count: int) -> None:
    """Wait for the list of the text typed: ``count`` options (not the list focus opened)."""
    page.wait_for_function(
        "([count]) => [...document.querySelectorAll('[role=listbox]')].some("
        "(list) => !list.hidden && list.querySelectorAll('[role=option]').length === count)",
        arg=[count],
    )


def _selected(page: Any) -> list[str]:
    return page.locator(OPTIONS).evaluate_all(
        "(options) => options.map((o) => o.getAttribute('aria-selected'))"
    )


def test_namesakes_ranking_keyboard_and_the_picked_record(
    page: Any, live_server: LiveServer
) -> None:
    people = _namesakes(live_server)
    name, older, newer = people["name"], people["older"], people["newer"]
    page.goto(f"{live_server.url}/apps/{APP}/forms/visit/new")
    picker = page.get_by_test_id("relation-patient")
    picker.fill(name.lower())
    _wait_options(page, 4)
    titles = page.locator(f"{OPTIONS} .fl-option-title").all_inner_texts()
    # the two exact matches (newest first), then the one starting with it, then the rest
    assert titles == [name, name, f"{name}son", f"Ma {name}"]
    lines = page.locator(f"{OPTIONS} .fl-option-sub").all_inner_texts()
    assert lines[:2] == [_second_line(newer), _second_line(older)]
    # nothing is highlighted: ↓ goes to the first option, ↓ again to the second
    assert _selected(page) == ["false"] * 4
    picker.press("ArrowDown")
    assert _selected(page) == ["true", "false", "false", "false"]
    picker.press("ArrowDown")
    picker.press("ArrowUp")
    picker.press("ArrowDown")
    picker.press("Enter")
    page.locator("[role=listbox]").first.wait_for(state="hidden")
    # the older namesake is picked, and the field says so: her name and her second line
    assert page.locator("input[name=patient]").input_value() == older["id"]
    assert picker.input_value() == name
    assert page.get_by_test_id("relation-patient-chosen").inner_text() == name
    assert page.get_by_test_id("relation-patient-sub").inner_text() == _second_line(older)
    # Esc closes the list and keeps the pick
    picker.fill(name)
    page.locator(OPTIONS).first.wait_for()
    picker.press("Escape")
    page.locator("[role=listbox]").first.wait_for(state="hidden")
    assert page.locator("input[name=patient]").input_value() == older["id"]
    # leaving the box puts the picked title back
    page.locator("input[name=weight_kg]").focus()
    page.wait_for_function(
        "([name]) => document.querySelector('[data-testid=relation-patient]').value === name",
        arg=[name],
    )
    # a page that opens with a patient shows her title and second line
    page.goto(f"{live_server.url}/apps/{APP}/forms/visit/new?patient={newer['id']}")
    sub = page.get_by_test_id("relation-patient-sub")
    sub.wait_for()
    assert sub.inner_text() == _second_line(newer)
    assert page.get_by_test_id("relation-patient").input_value() == name


def test_in_chinese_a_select_on_the_second_line_speaks_chinese(
    browser: Any, live_server: LiveServer
) -> None:
    word = _word()
    phone = unique_phone()
    staff = {"role": "nurse", "department": "general", "phone": phone}
    create(live_server, "staff", {"name": f"Dr {word}", **staff})
    create(live_server, "staff", {"name": f"Dr {word}", **staff, "role": "doctor"})
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
        page.goto(f"{live_server.url}/apps/{APP}/forms/visit/new")
        picker = page.get_by_test_id("relation-doctor")
        assert picker.get_attribute("placeholder") == "搜索…"
        picker.fill(f"Dr {word}")
        _wait_options(page, 2)
        lines = page.locator(f"{OPTIONS} .fl-option-sub").all_inner_texts()
        assert lines == [f"{phone} · 医生", f"{phone} · 护士"]
        assert _selected(page) == ["false", "false"]
        picker.press("ArrowDown")
        picker.press("Enter")
        assert page.get_by_test_id("relation-doctor-sub").inner_text() == f"{phone} · 医生"
        picker.fill(f"{word}zz")
        page.locator("[role=listbox]:visible .fl-none").wait_for()
        assert page.locator("[role=listbox]:visible .fl-none").inner_text() == "无匹配结果"
    finally:
        context.close()
    assert not errors, errors
