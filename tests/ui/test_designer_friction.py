"""Designer friction (issue 17, item 10): a new option is empty and focused, a new dropdown
has no placeholder options and cannot be saved without real ones, the options editor is in
view when a choice field is selected, the first save names the form in the breadcrumb and
offers "Open the form", and labels without Chinese are flagged and counted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in

APP = "designer_friction"
DEFINITION = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Designer friction",
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


def in_view(page: Any, testid: str) -> bool:
    """Whether the element is inside the window and its scrolling pane, without scrolling."""
    return bool(
        page.evaluate(
            """(testid) => {
              const node = document.querySelector(`[data-testid="${testid}"]`);
              const box = node.getBoundingClientRect();
              const pane = node.closest('.side-pane').getBoundingClientRect();
              return box.top >= pane.top && box.bottom <= Math.min(pane.bottom, innerHeight);
            }""",
            testid,
        )
    )


def saved_ok(page: Any) -> None:
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )


def test_options_start_empty_and_in_view(page: Any, live_server: LiveServer, app: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server.url}/designer/{app}/new")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("prop-form-label").fill("Visit")
    page.get_by_test_id("prop-form-label-zh-CN").fill("就诊")
    assert page.get_by_test_id("designer-crumb").inner_text() == "New form"
    assert page.get_by_test_id("designer-open").is_hidden()
    page.get_by_test_id("palette-select").click()
    page.keyboard.type("Kind")
    # one empty option, no "Option 1/2"
    assert page.get_by_test_id("prop-options").locator("li").count() == 1
    assert page.get_by_test_id("option-0-label").input_value() == ""
    assert page.get_by_test_id("option-0-value").input_value() == ""
    assert in_view(page, "option-add")
    page.get_by_test_id("option-0-label").fill("Checkup")
    assert page.get_by_test_id("option-0-value").input_value() == "checkup"
    # "Add an option": an empty input with the cursor in it; typing gives just that
    page.get_by_test_id("option-add").click()
    assert focused(page) == "option-1-label"
    assert page.get_by_test_id("option-1-label").input_value() == ""
    page.keyboard.type("Service")
    assert page.get_by_test_id("option-1-label").input_value() == "Service"
    assert page.get_by_test_id("option-1-value").input_value() == "service"
    # an option left empty stops the save at the options editor
    page.get_by_test_id("option-add").click()
    page.get_by_test_id("designer-save").click()
    error = page.get_by_test_id("prop-options-error")
    error.wait_for(state="visible")
    assert "Option 3 is empty" in error.inner_text()
    assert page.get_by_test_id("field-kind").locator(".card-error").is_visible()
    page.get_by_test_id("option-2-remove").click()
    # no option at all: the same, said so
    page.get_by_test_id("option-1-remove").click()
    page.get_by_test_id("option-0-remove").click()
    assert page.get_by_test_id("options-empty").is_visible()
    page.get_by_test_id("designer-save").click()
    error.wait_for(state="visible")
    assert "at least one option" in error.inner_text()
    page.get_by_test_id("option-add").click()
    page.keyboard.type("Checkup")
    page.get_by_test_id("option-0-label-zh-CN").fill("体检")
    page.get_by_test_id("prop-label-zh-CN").fill("类型")

    # selecting a choice field further down: its options are in view
    for _ in range(6):
        page.get_by_test_id("palette-text").click()
    page.get_by_test_id("palette-multiselect").click()
    page.keyboard.type("Tags")
    page.get_by_test_id("field-kind").click()
    assert in_view(page, "option-add")
    page.get_by_test_id("field-tags").click()
    assert in_view(page, "option-add")
    page.get_by_test_id("option-0-label").fill("Urgent")
    page.get_by_test_id("option-0-label-zh-CN").fill("紧急")
    page.get_by_test_id("prop-label-zh-CN").fill("标签")
    for key in ["field_1", "field_2", "field_3", "field_4", "field_5", "field_6"]:
        page.get_by_test_id(f"field-{key}").click()
        page.get_by_test_id("designer-delete").click()

    # the first save: the breadcrumb names the form and "Open the form" is there
    page.get_by_test_id("designer-save").click()
    saved_ok(page)
    assert page.url.endswith(f"/designer/{app}/visit")
    assert page.get_by_test_id("designer-crumb").inner_text() == "Visit"
    link = page.get_by_test_id("designer-open")
    assert link.is_visible()
    assert link.get_attribute("href") == f"/apps/{app}/forms/visit/new"
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/visit").json()["form"]
    kind, tags = form["fields"]
    assert kind["options"] == [{"value": "checkup", "label": {"en": "Checkup", "zh-CN": "体检"}}]
    assert tags["options"] == [{"value": "urgent", "label": {"en": "Urgent", "zh-CN": "紧急"}}]


def test_labels_without_chinese_are_flagged(page: Any, live_server: LiveServer, app: str) -> None:
    page.goto(f"{live_server.url}/designer/{app}/ward")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    count = page.get_by_test_id("designer-missing-zh")
    # "Ward" and the name field have English-only labels (the name none at all: not counted)
    assert count.inner_text() == "1 labels without Chinese"
    page.get_by_test_id("palette-text").click()
    page.keyboard.type("Bed")
    assert count.inner_text() == "2 labels without Chinese"
    card = page.get_by_test_id("field-bed")
    assert card.get_by_test_id("card-missing-zh").is_visible()
    assert page.get_by_test_id("prop-label-missing").is_visible()
    page.get_by_test_id("prop-label-zh-CN").fill("床位")
    assert page.get_by_test_id("prop-label-missing").is_hidden()
    assert card.get_by_test_id("card-missing-zh").count() == 0
    assert count.inner_text() == "1 labels without Chinese"
    # a dropdown's option labels count too
    page.get_by_test_id("palette-select").click()
    page.keyboard.type("Side")
    page.get_by_test_id("prop-label-zh-CN").fill("侧")
    page.get_by_test_id("option-0-label").fill("Left")
    assert page.get_by_test_id("option-0-missing").is_visible()
    assert count.inner_text() == "2 labels without Chinese"
    # the count leads to the first one: the form itself has no field, so the form settings
    count.click()
    page.get_by_test_id("option-0-label-zh-CN").wait_for(state="detached")
    page.get_by_test_id("prop-form-label-zh-CN").fill("病房")
    assert count.inner_text() == "1 labels without Chinese"
    count.click()
    assert page.get_by_test_id("option-0-missing").is_visible()
    page.get_by_test_id("option-0-label-zh-CN").fill("左")
    assert count.is_hidden()


def test_chinese_designer_words(browser: Any, live_server: LiveServer, app: str) -> None:
    with live_server.api() as api:
        made = api.post(
            "/api/users",
            json={"username": "friction_zh", "password": "zh-admin-pw-2", "is_admin": True},
        )
        assert made.status_code == 201, made.text
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        sign_in(tab, live_server, "friction_zh", "zh-admin-pw-2")
        tab.goto(f"{live_server.url}/designer/{app}/new")
        tab.wait_for_selector("[data-testid=designer][data-ready=true]")
        assert tab.get_by_test_id("designer-crumb").inner_text() == "新建表单"
        tab.get_by_test_id("prop-form-label").fill("Bed list")
        tab.get_by_test_id("prop-form-label-zh-CN").fill("床位表")
        tab.get_by_test_id("palette-select").click()
        tab.keyboard.type("Side")
        assert tab.get_by_test_id("designer-missing-zh").inner_text() == "1 个名称缺少中文"
        assert tab.get_by_test_id("card-missing-zh").inner_text() == "缺中文"
        tab.get_by_test_id("designer-save").click()
        error = tab.get_by_test_id("prop-options-error")
        error.wait_for(state="visible")
        assert error.inner_text() == "选项 1 为空：请填写名称，或将其删除。"
        tab.get_by_test_id("option-0-label").fill("Left")
        tab.get_by_test_id("option-0-label-zh-CN").fill("左")
        tab.get_by_test_id("prop-label-zh-CN").fill("侧")
        tab.get_by_test_id("designer-save").click()
        tab.wait_for_function(
            "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
        )
        assert tab.get_by_test_id("designer-crumb").inner_text() == "床位表"
        assert tab.get_by_test_id("designer-open").inner_text() == "打开表单"
    finally:
        context.close()
