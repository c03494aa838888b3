"""Business words in the designer (issue 17, item 8): technical settings folded under
"Advanced"; a formula typed in spreadsheet words with field and function suggestions,
compiled to the JsonLogic the engine runs and shown back in the same words; a type change
with records offered as a plain conversion that saves the migration. English and Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in

APP = "designer_formulas"


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh-CN": zh}


DEFINITION = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": _label("Formulas", "公式"),
    "locales": ["en", "zh-CN"],
    "forms": [
        {
            "key": "visit",
            "label": _label("Visit", "就诊"),
            "fields": [
                {"key": "pain", "type": "integer", "label": _label("Pain score", "疼痛评分")},
                {"key": "dose", "type": "number", "label": _label("Dose", "剂量")},
                {"key": "weight", "type": "number", "label": _label("Weight", "体重")},
                {"key": "first", "type": "text", "label": _label("First", "名")},
                {"key": "last", "type": "text", "label": _label("Last", "姓")},
                {
                    "key": "level",
                    "type": "computed",
                    "label": _label("Level", "等级"),
                    "formula": {"if": [{">=": [{"var": "pain"}, 7]}, "High", "Low"]},
                },
                {
                    "key": "doubled",
                    "type": "computed",
                    "label": _label("Doubled", "加倍"),
                    "formula": {"map": [[1, 2], {"*": [{"var": ""}, 2]}]},
                },
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=DEFINITION)
        assert answer.status_code in (200, 201), answer.text
        for data in (
            {"pain": 8, "dose": 4.5, "weight": 60.5, "first": "Li", "last": "Wei"},
            {"pain": 2, "dose": 2.4, "weight": 70, "first": "He", "last": "Li"},
        ):
            made = api.post(f"/api/records/{APP}/visit", json={"data": data})
            assert made.status_code == 201, made.text
    yield APP


def _open(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/designer/{APP}/visit")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")


def _records(live_server: LiveServer) -> list[dict[str, Any]]:
    with live_server.api() as api:
        items = api.get(f"/api/records/{APP}/visit", params={"sort": "created_at"}).json()
    return [item["data"] for item in items["items"]]


def test_formulas_advanced_and_conversion(page: Any, live_server: LiveServer, app: str) -> None:
    _open(page, live_server)
    # technical settings are folded away
    page.get_by_test_id("field-first").click()
    assert page.get_by_test_id("prop-key").is_hidden()
    assert page.get_by_test_id("prop-pattern").is_hidden()
    assert page.get_by_test_id("prop-indexed").is_hidden()
    page.get_by_test_id("prop-advanced-toggle").click()
    assert page.get_by_test_id("prop-key").is_visible()
    assert page.get_by_test_id("prop-pattern").is_visible()
    page.get_by_test_id("prop-advanced-toggle").click()

    # an existing formula, in words
    page.get_by_test_id("field-level").click()
    words = page.get_by_test_id("prop-formula")
    assert words.input_value() == 'IF({Pain score} >= 7, "High", "Low")'
    # one these words cannot say stays as JSON under Advanced
    page.get_by_test_id("field-doubled").click()
    assert page.get_by_test_id("formula-unsayable").is_visible()
    assert words.get_attribute("readonly") is not None

    # a new formula starts empty; typed with suggestions for { and function names
    page.get_by_test_id("palette-computed").click()
    page.keyboard.type("Full name")
    assert words.input_value() == ""
    page.get_by_test_id("designer-save").click()  # an empty formula is said at its place
    assert page.get_by_test_id("prop-formula-error").inner_text().startswith("Write the formula")
    words.click()
    page.keyboard.type("CON")
    suggestions = page.get_by_test_id("formula-suggestions")
    suggestions.wait_for()
    assert page.get_by_test_id("formula-suggestion-CONCAT").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.type("{Fi")
    assert page.get_by_test_id("formula-suggestion-first").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.type(', " ", ')
    page.get_by_test_id("formula-field-last").click()  # a chip
    page.keyboard.type(")")
    assert words.input_value() == 'CONCAT({First}, " ", {Last})'
    assert page.get_by_test_id("prop-formula-error").is_hidden()
    # a mistake is said at its place, and goes once fixed
    words.fill("SUM({Nope}, 1)")
    error = page.get_by_test_id("prop-formula-error")
    assert error.inner_text() == "There is no field named “Nope”. (at character 5)"
    words.fill('CONCAT({First}, " ", {Last})')
    assert error.is_hidden()
    page.get_by_test_id("prop-advanced-toggle").click()
    assert '"cat"' in page.get_by_test_id("prop-formula_json").input_value()

    # a type change with records: the conversion is a plain choice, with examples
    page.get_by_test_id("field-dose").click()
    page.get_by_test_id("prop-type").select_option("integer")
    page.get_by_test_id("designer-save").click()
    choice = page.get_by_test_id("migrate-dose")
    choice.wait_for()
    assert "convert 2 records from Number to Whole number" in choice.inner_text()
    assert "JsonLogic" not in page.get_by_test_id("designer-plan").inner_text()
    assert "migrations" not in page.get_by_test_id("designer-plan").inner_text()
    assert page.get_by_test_id("migrate-dose-round").is_checked()
    example = page.get_by_test_id("migrate-dose-example")
    page.wait_for_function(
        "document.querySelector('[data-testid=migrate-dose-example]').textContent.includes('→')"
    )
    assert "4.5 → 5" in example.inner_text() and "2.4 → 2" in example.inner_text()
    page.get_by_test_id("designer-confirm").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{APP}/forms/visit").json()["form"]
    fields = {field["key"]: field for field in form["fields"]}
    assert fields["dose"]["type"] == "integer"
    assert fields["full_name"]["formula"] == {"cat": [{"var": "first"}, " ", {"var": "last"}]}
    assert [(r["dose"], r["full_name"]) for r in _records(live_server)] == [
        (5, "Li Wei"),
        (2, "He Li"),
    ]


def test_formulas_and_conversion_in_chinese(
    browser: Any, live_server: LiveServer, app: str
) -> None:
    with live_server.api() as api:
        made = api.post(
            "/api/users",
            json={"username": "formula_zh", "password": "zh-admin-pw-3", "is_admin": True},
        )
        assert made.status_code == 201, made.text
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, "formula_zh", "zh-admin-pw-3")
        _open(tab, live_server)
        tab.get_by_test_id("field-level").click()
        words = tab.get_by_test_id("prop-formula")
        assert words.input_value() == 'IF({疼痛评分} >= 7, "High", "Low")'
        assert tab.get_by_test_id("prop-advanced-toggle").inner_text() == "高级"
        words.fill("IF({Nope} >= 7, 1, 0)")
        assert tab.get_by_test_id("prop-formula-error").inner_text() == (
            "没有名为“Nope”的字段。（第 4 个字符处）"
        )
        # a field named in Chinese compiles to the same JsonLogic
        words.fill('IF({疼痛评分} >= 8, "High", "Low")')
        tab.get_by_test_id("field-weight").click()
        tab.get_by_test_id("prop-type").select_option("integer")
        tab.get_by_test_id("designer-save").click()
        choice = tab.get_by_test_id("migrate-weight")
        choice.wait_for()
        assert "将 2 条记录从" in choice.inner_text()
        assert tab.get_by_text("四舍五入").is_visible()
        tab.get_by_test_id("migrate-weight-clear").check()
        tab.wait_for_function(
            "document.querySelector('[data-testid=migrate-weight-example]')"
            ".textContent.includes('（空）')"
        )
        assert tab.get_by_test_id("designer-confirm").inner_text() == "转换记录并保存"
        tab.get_by_test_id("designer-confirm").click()
        tab.wait_for_function(
            "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
        )
    finally:
        context.close()
    assert not errors, errors
    with live_server.api() as api:
        form = api.get(f"/api/apps/{APP}/forms/visit").json()["form"]
    level = next(field for field in form["fields"] if field["key"] == "level")
    assert level["formula"] == {"if": [{">=": [{"var": "pain"}, 8]}, "High", "Low"]}
    assert [("weight" in r, r["level"]) for r in _records(live_server)] == [
        (False, "High"),
        (False, "Low"),
    ]
