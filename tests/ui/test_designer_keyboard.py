"""The designer without a mouse, and in Chinese: a form built, changed, reordered and saved
with key presses only; a zh-CN browser gets Chinese chrome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in

APP = "designer_keys"
DEFINITION = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Designer keys",
    "locales": ["en", "zh-CN"],
    "forms": [{"key": "ward", "label": "Ward", "fields": [{"key": "name", "type": "text"}]}],
}


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=DEFINITION)
        assert answer.status_code in (200, 201), answer.text
    yield APP


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement?.dataset?.testid || ''"))


def tab_to(page: Any, testid: str, *, backwards: bool = False, limit: int = 90) -> None:
    """Press Tab (or Shift+Tab) until the element with ``testid`` has the focus."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        if focused(page) == testid:
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {testid}; focus is on {focused(page)!r}")


def test_keyboard_only_form_building(page: Any, live_server: LiveServer, app: str) -> None:
    page.goto(f"{live_server.url}/designer/{app}/new")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    keys = page.keyboard

    # the form's name: Form settings is a button in the bar
    tab_to(page, "designer-form-settings")
    keys.press("Enter")
    assert focused(page) == "prop-form-label"
    keys.type("Triage")

    # a text field: palette buttons add after the selection and put the focus on its label
    tab_to(page, "palette-text", backwards=True)
    keys.press("Enter")
    assert focused(page) == "prop-label"
    keys.type("Patient name")
    keys.press("Tab")
    assert focused(page) == "prop-label-zh-CN"
    keys.type("患者姓名")
    tab_to(page, "prop-required")
    keys.press("Space")

    # a whole number, then a dropdown
    tab_to(page, "palette-integer", backwards=True)
    keys.press("Enter")
    keys.type("Pain score")
    tab_to(page, "prop-max")
    keys.type("10")
    tab_to(page, "palette-select", backwards=True)
    keys.press("Enter")
    keys.type("Priority")
    tab_to(page, "option-0-label")
    keys.type("Urgent")
    tab_to(page, "option-add")
    keys.press("Enter")
    assert focused(page) == "option-1-label"
    keys.type("Routine")

    # back on the canvas (Escape), move the dropdown to the top with Alt+ArrowUp
    keys.press("Escape")
    assert focused(page) == "field-priority"
    keys.press("Alt+ArrowUp")
    keys.press("Alt+ArrowUp")
    assert focused(page) == "field-priority"
    order = page.evaluate(
        "[...document.querySelectorAll('[data-testid=canvas] .field-card')]"
        ".map(card => card.dataset.testid)"
    )
    assert order == ["field-priority", "field-patient_name", "field-pain_score"]
    # arrows move the selection; Delete removes, Control+Z brings it back
    keys.press("ArrowDown")
    keys.press("ArrowDown")
    assert focused(page) == "field-pain_score"
    keys.press("Delete")
    assert page.get_by_test_id("field-pain_score").count() == 0
    keys.press("Control+z")
    assert page.get_by_test_id("field-pain_score").count() == 1

    keys.press("Control+s")
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/triage").json()["form"]
    assert form["label"] == "Triage"
    assert [f["key"] for f in form["fields"]] == ["priority", "patient_name", "pain_score"]
    priority, name, score = form["fields"]
    assert [o["value"] for o in priority["options"]] == ["urgent", "routine"]
    assert name["label"] == {"en": "Patient name", "zh-CN": "患者姓名"}
    assert name["required"] is True
    assert score == {"key": "pain_score", "type": "integer", "label": "Pain score", "max": 10}


def test_chinese_chrome_and_a_chinese_label(
    browser: Any, live_server: LiveServer, app: str
) -> None:
    with live_server.api() as api:
        made = api.post(
            "/api/users",
            json={"username": "designer_zh", "password": "zh-admin-pw-1", "is_admin": True},
        )
        assert made.status_code == 201, made.text
    context = browser.new_context(locale="zh-CN", viewport={"width": 1024, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(tab, live_server, "designer_zh", "zh-admin-pw-1")
    tab.goto(f"{live_server.url}/designer/{app}/ward")
    tab.wait_for_selector("[data-testid=designer][data-ready=true]")
    assert tab.evaluate("document.documentElement.lang") == "zh-CN"
    assert tab.get_by_test_id("designer-save").inner_text().strip() == "保存"
    assert tab.get_by_test_id("palette-text").inner_text().strip().endswith("单行文本")
    assert tab.get_by_test_id("designer-tab-properties").inner_text() == "属性"
    tab.get_by_test_id("palette-date").click()
    # a label without Latin letters gives a numbered key
    tab.get_by_test_id("prop-label").fill("入院日期")
    assert tab.get_by_test_id("prop-key").input_value() == "field_1"
    assert "有未保存的更改" in tab.get_by_test_id("designer-dirty").inner_text()
    assert tab.get_by_test_id("prop-advanced-toggle").inner_text() == "高级"
    tab.get_by_test_id("prop-advanced-toggle").click()
    tab.get_by_test_id("prop-key").fill("Admitted")
    assert "小写字母" in tab.get_by_test_id("prop-key-error").inner_text()
    context.close()
    assert not errors, errors
