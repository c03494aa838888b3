"""Form templates (issue 17, item 9; docs/forms.md, Form templates), in a real browser: the
designer's home offers the shipped templates (in Chinese too); starting from one opens a new
form with its fields and a key from its name, saved through the designer's ordinary save;
"Save as template" stores a form's fields for other apps' designers, who start from it; the
one who may deletes it from the home page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in

APP = "templates_lab"
OTHER = "templates_other"


def definition(key: str, form: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "formloom.app/v1",
        "key": key,
        "version": "1.0.0",
        "label": key.replace("_", " ").capitalize(),
        "locales": ["en", "zh-CN"],
        "forms": [form],
    }


@pytest.fixture(scope="module")
def apps(live_server: LiveServer) -> Iterator[None]:
    bed = {
        "key": "bed_request",
        "label": {"en": "Bed request", "zh-CN": "床位申请"},
        "fields": [
            {"key": "patient", "type": "text", "label": "Patient", "required": True},
            {"key": "ward", "type": "select", "label": "Ward",
             "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]},
            {"key": "isolation", "type": "boolean", "label": "Isolation",
             "visible_if": {"==": [{"var": "ward"}, "b"]}},
        ],
    }  # fmt: skip
    with live_server.api() as api:
        for document in (
            definition(APP, bed),
            definition(OTHER, {"key": "complaint", "label": "Complaint", "fields": [
                {"key": "note", "type": "text"}]}),
        ):  # fmt: skip
            answer = api.post("/api/apps/import", json=document)
            assert answer.status_code in (200, 201), answer.text
        made = api.post(f"/api/records/{APP}/bed_request", json={"data": {"patient": "Zhou"}})
        assert made.status_code == 201, made.text
    yield None


def saved_ok(page: Any) -> None:
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )


def test_start_from_a_shipped_template(page: Any, live_server: LiveServer, apps: None) -> None:
    page.goto(f"{live_server.url}/designer/{OTHER}")
    offered = page.get_by_test_id("form-templates").locator("a")
    names = offered.all_inner_texts()
    assert names[:4] == ["Appointment request", "Complaint", "Incident report",
                         "Satisfaction survey"]  # fmt: skip
    page.get_by_test_id("template-complaint").click()
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    assert "Complaint" in page.get_by_test_id("designer-status").inner_text()
    assert page.get_by_test_id("designer-dirty").is_visible()
    # the app has a form "complaint" already: the new one's key is unique
    page.get_by_test_id("designer-form-settings").click()
    assert page.get_by_test_id("prop-form-key").input_value() == "complaint_2"
    cards = page.locator("[data-testid=canvas] .field-card")
    assert cards.count() == 9
    page.get_by_test_id("designer-save").click()
    saved_ok(page)
    assert page.url.endswith(f"/designer/{OTHER}/complaint_2")
    with live_server.api() as api:
        form = api.get(f"/api/apps/{OTHER}/forms/complaint_2").json()["form"]
        shipped = api.get("/api/form-templates/complaint").json()["form"]
    assert form == {"key": "complaint_2", **shipped}
    # its tabs template opens as tabs in the designer
    page.goto(f"{live_server.url}/designer/{OTHER}/new?template=incident_report")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    assert page.get_by_test_id("canvas-tabs").locator("button").all_inner_texts() == [
        "What happened", "Impact", "Follow-up"
    ]  # fmt: skip
    page.goto(f"{live_server.url}/designer/{OTHER}/new?template=nothing_like_it")
    assert page.locator("h1").first.is_visible()
    assert "nothing_like_it" in page.content()


def test_save_as_template_start_from_it_and_delete_it(
    page: Any, live_server: LiveServer, apps: None
) -> None:
    page.goto(f"{live_server.url}/designer/{APP}/bed_request")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    # unsaved changes first: refused, the template comes from the saved form
    page.get_by_test_id("palette-text").click()
    page.keyboard.type("Bed number")
    page.get_by_test_id("designer-save-template").click()
    assert "Save your changes first" in page.get_by_test_id("designer-status").inner_text()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.get_by_test_id("designer-save-template").click()
    dialog = page.get_by_test_id("template-dialog")
    assert dialog.is_visible()
    assert page.get_by_test_id("template-name").input_value() == "Bed request"
    assert page.get_by_test_id("template-name-zh-CN").input_value() == "床位申请"
    page.get_by_test_id("template-name").fill("Ward bed request")
    page.get_by_test_id("template-name-zh-CN").fill("病区床位申请")
    page.get_by_test_id("template-save").click()
    saved_ok(page)
    assert dialog.is_hidden()
    with live_server.api() as api:
        items = api.get("/api/form-templates").json()["items"]
    mine = next(i for i in items if i["label"] == {"en": "Ward bed request",
                                                    "zh-CN": "病区床位申请"})  # fmt: skip
    assert mine["created_by"] == "admin" and mine["fields"] == 3

    # a designer of another app starts from it: same fields and condition, no records
    page.goto(f"{live_server.url}/designer/{OTHER}")
    card = page.locator(f"[data-template='{mine['id']}']")
    assert "saved by admin" in card.inner_text()
    card.locator("a").click()
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("designer-save").click()
    saved_ok(page)
    with live_server.api() as api:
        form = api.get(f"/api/apps/{OTHER}/forms/ward_bed_request").json()["form"]
        records = api.get(f"/api/records/{OTHER}/ward_bed_request").json()["items"]
    assert [f["key"] for f in form["fields"]] == ["patient", "ward", "isolation"]
    assert form["fields"][2]["visible_if"] == {"==": [{"var": "ward"}, "b"]}
    assert records == []

    # deleted from the home page of the app it came from
    page.goto(f"{live_server.url}/designer/{APP}")
    page.once("dialog", lambda prompt: prompt.accept())
    page.get_by_test_id(f"template-delete-{mine['id']}").click()
    page.locator(f"[data-template='{mine['id']}']").wait_for(state="detached")
    with live_server.api() as api:
        assert api.get(f"/api/form-templates/{mine['id']}").status_code == 404
    # shipped ones cannot be deleted: no button
    assert page.get_by_test_id("template-delete-complaint").count() == 0


def test_templates_in_chinese(browser: Any, live_server: LiveServer, apps: None) -> None:
    with live_server.api() as api:
        made = api.post(
            "/api/users",
            json={"username": "templates_zh", "password": "zh-admin-pw-9", "is_admin": True},
        )
        assert made.status_code == 201, made.text
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        sign_in(tab, live_server, "templates_zh", "zh-admin-pw-9")
        tab.goto(f"{live_server.url}/designer/{APP}")
        section = tab.get_by_test_id("form-templates")
        assert section.locator("h2").inner_text() == "从模板开始"
        names = section.locator("a").all_inner_texts()
        assert {"投诉", "满意度调查", "预约申请", "不良事件报告"} <= set(names)
        tab.get_by_test_id("template-satisfaction_survey").click()
        tab.wait_for_selector("[data-testid=designer][data-ready=true]")
        assert tab.get_by_test_id("designer-missing-zh").is_hidden()  # all in Chinese
        assert "满意度调查" in tab.get_by_test_id("designer-status").inner_text()
    finally:
        context.close()
