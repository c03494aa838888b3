"""The form designer in a real browser: building a new form by dragging, the live preview
with a condition, saving through the plan/apply path, undo/redo, and who may open it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.engines.forms import FIELD_TYPES
from tests.ui.conftest import LiveServer

APP = "designer_lab"
LAB = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Designer lab",
    "locales": ["en", "zh-CN"],
    "roles": [{"key": "clerk", "label": "Clerk"}],
    "forms": [
        {
            "key": "client",
            "label": {"en": "Client", "zh-CN": "客户"},
            "fields": [{"key": "name", "type": "text", "label": "Name", "required": True}],
        }
    ],
}


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=LAB)
        assert answer.status_code in (200, 201), answer.text
    yield APP


def open_designer(page: Any, server: LiveServer, path: str) -> None:
    page.goto(f"{server.url}/designer/{path}")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")


def drop_below(source: Any, target: Any) -> None:
    """Drag ``source`` onto the lower edge of ``target`` (a drop after it)."""
    box = target.bounding_box()
    source.drag_to(target, target_position={"x": 40, "y": box["height"] - 4})


def canvas_keys(page: Any) -> list[str]:
    return page.evaluate(
        "[...document.querySelectorAll('[data-testid=canvas] .field-card')]"
        ".map(card => card.dataset.testid.slice(6))"
    )


def test_build_a_form_by_dragging_preview_and_save(
    page: Any, live_server: LiveServer, lab: str
) -> None:
    open_designer(page, live_server, f"{lab}/new")
    assert page.get_by_test_id("designer-dirty").is_hidden()
    page.get_by_test_id("prop-form-label").fill("Intake")
    assert page.get_by_test_id("prop-form-key").input_value() == "intake"

    canvas = page.get_by_test_id("canvas")
    page.get_by_test_id("palette-text").drag_to(canvas)
    assert canvas_keys(page) == ["field_1"]
    page.get_by_test_id("prop-label").fill("Full name")
    page.get_by_test_id("prop-label-zh-CN").fill("姓名")
    assert page.get_by_test_id("prop-key").input_value() == "full_name"
    page.get_by_test_id("prop-required").check()

    page.get_by_test_id("palette-select").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Visit kind")
    page.get_by_test_id("option-0-label").fill("First visit")
    page.get_by_test_id("option-add").click()
    page.get_by_test_id("option-1-label").fill("Follow-up")
    page.get_by_test_id("option-add").click()
    page.get_by_test_id("option-2-label").fill("Emergency")
    assert page.get_by_test_id("option-1-value").input_value() == "follow_up"
    # reorder options: Emergency first
    page.get_by_test_id("option-2-up").click()
    page.get_by_test_id("option-1-up").click()
    assert page.get_by_test_id("option-0-value").input_value() == "emergency"

    # a drop in the upper half of a card inserts before it: only the drop handler does that
    page.get_by_test_id("palette-textarea").drag_to(
        page.get_by_test_id("field-visit_kind"), target_position={"x": 40, "y": 4}
    )
    assert canvas_keys(page) == ["full_name", "field_1", "visit_kind"]
    page.get_by_test_id("prop-label").fill("Follow-up notes")
    assert page.get_by_test_id("prop-key").input_value() == "follow_up_notes"

    # reorder on the canvas by dragging a field: notes to the end
    drop_below(
        page.get_by_test_id("field-follow_up_notes"), page.get_by_test_id("field-visit_kind")
    )
    assert canvas_keys(page) == ["full_name", "visit_kind", "follow_up_notes"]

    # shown only for follow-ups, with the condition builder
    page.get_by_test_id("field-follow_up_notes").click()
    page.get_by_test_id("cond-add").click()
    page.get_by_test_id("cond-0-field").select_option("visit_kind")
    page.get_by_test_id("cond-0-value").select_option("follow_up")
    assert page.get_by_test_id("field-follow_up_notes").locator(".flag.cond").is_visible()

    page.get_by_test_id("designer-tab-preview").click()
    preview = page.get_by_test_id("preview")
    notes = preview.locator("[data-field=follow_up_notes]")
    preview.locator("[data-field=visit_kind]").wait_for()
    assert notes.is_hidden()
    preview.get_by_label("Follow-up", exact=True).check()
    notes.wait_for(state="visible")
    preview.get_by_label("First visit", exact=True).check()
    notes.wait_for(state="hidden")

    assert page.get_by_test_id("designer-dirty").is_visible()
    page.get_by_test_id("designer-save").click()
    status = page.get_by_test_id("designer-status")
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    assert "revision" in status.inner_text()
    assert page.get_by_test_id("designer-dirty").is_hidden()
    assert page.url.endswith(f"/designer/{lab}/intake")

    with live_server.api() as api:
        form = api.get(f"/api/apps/{lab}/forms/intake").json()["form"]
    assert form["label"] == "Intake"
    assert [f["key"] for f in form["fields"]] == ["full_name", "visit_kind", "follow_up_notes"]
    name, kind, notes_field = form["fields"]
    assert name == {
        "key": "full_name",
        "type": "text",
        "label": {"en": "Full name", "zh-CN": "姓名"},
        "required": True,
    }
    assert [o["value"] for o in kind["options"]] == ["emergency", "first_visit", "follow_up"]
    assert notes_field["type"] == "textarea"
    assert notes_field["visible_if"] == {"==": [{"var": "visit_kind"}, "follow_up"]}


def test_sections_and_table_columns_by_dragging(
    page: Any, live_server: LiveServer, lab: str
) -> None:
    open_designer(page, live_server, f"{lab}/client")
    page.get_by_test_id("palette-section").drag_to(
        page.get_by_test_id("field-name"), target_position={"x": 40, "y": 4}
    )
    page.get_by_test_id("prop-label").fill("Contact")
    # the name field into the section (drop on the section's list)
    page.get_by_test_id("field-name").drag_to(
        page.get_by_test_id("field-contact").locator("[data-list=section]")
    )
    assert page.get_by_test_id("field-contact").get_by_test_id("field-name").count() == 1
    # a table, then a number dragged into it becomes a column
    drop_below(page.get_by_test_id("palette-table"), page.get_by_test_id("field-name"))
    page.get_by_test_id("prop-label").fill("Items")
    page.get_by_test_id("palette-number").drag_to(
        page.get_by_test_id("field-items").locator("[data-list=table]")
    )
    page.get_by_test_id("prop-label").fill("Qty")
    assert page.get_by_test_id("field-items.qty").is_visible()
    # a section cannot become a column: the "Place in" choice offers tables only to columns
    page.get_by_test_id("field-items.qty").click()
    page.get_by_test_id("prop-parent").select_option(label="Section: Contact")
    assert page.get_by_test_id("field-contact").get_by_test_id("field-qty").count() == 1
    page.get_by_test_id("prop-parent").select_option(label="Table: Items (as a column)")
    assert page.get_by_test_id("field-items.qty").count() == 1
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{lab}/forms/client").json()["form"]
    assert [(f["key"], f["type"]) for f in form["fields"]] == [
        ("contact", "section"),
        ("name", "text"),
        ("items", "table"),
    ]
    assert [c["key"] for c in form["fields"][2]["fields"]] == ["column_1", "qty"]


def test_undo_redo_and_the_unsaved_indicator(page: Any, live_server: LiveServer, lab: str) -> None:
    open_designer(page, live_server, f"{lab}/intake")
    dirty = page.get_by_test_id("designer-dirty")
    assert dirty.is_hidden()
    assert page.get_by_test_id("designer-undo").is_disabled()
    page.get_by_test_id("field-visit_kind").click()
    page.get_by_test_id("designer-delete").click()
    assert "visit_kind" not in canvas_keys(page)
    assert dirty.is_visible()
    # leaving now asks first
    assert page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true});"
        " window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    page.keyboard.press("Control+z")
    assert canvas_keys(page) == ["full_name", "visit_kind", "follow_up_notes"]
    assert dirty.is_hidden()
    page.keyboard.press("Control+Shift+z")
    assert "visit_kind" not in canvas_keys(page)
    page.get_by_test_id("designer-undo").click()
    assert "visit_kind" in canvas_keys(page)
    page.keyboard.press("Control+y")
    assert "visit_kind" not in canvas_keys(page)
    page.get_by_test_id("designer-undo").click()
    # typing a label is one undo step, not one per key
    page.get_by_test_id("field-full_name").click()
    page.get_by_test_id("prop-label").press_sequentially("Client name", delay=5)
    assert page.get_by_test_id("field-full_name").locator(".card-label").inner_text() != "Full name"
    page.get_by_test_id("designer-undo").click()
    assert page.get_by_test_id("field-full_name").locator(".card-label").inner_text() == "Full name"
    assert page.get_by_test_id("prop-label").input_value() == "Full name"
    assert dirty.is_hidden()


def test_only_platform_admins_open_the_designer(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="en-US")
    tab = context.new_page()
    tab.goto(f"{live_server.url}/designer/clinic_crm/patient")
    assert "/signin?next=" in tab.url
    with live_server.api() as api:
        made = api.post(
            "/api/users", json={"username": "designer_clerk", "password": "clerk-pw-123"}
        )
        assert made.status_code == 201, made.text
        roles = api.put("/api/users/designer_clerk/roles", json={"clinic_crm": ["front_desk"]})
        assert roles.status_code == 200, roles.text
    tab.goto(f"{live_server.url}/signin")
    tab.fill("input[name=username]", "designer_clerk")
    tab.fill("input[name=password]", "clerk-pw-123")
    tab.click("button[type=submit]")
    tab.wait_for_url(lambda url: "/signin" not in url)
    answer = tab.goto(f"{live_server.url}/designer/clinic_crm/patient")
    assert answer is not None and answer.status == 403
    assert tab.get_by_test_id("designer-denied").is_visible()
    context.close()
    with live_server.api() as api:
        denied = api.get("/api/audit", params={"actor": "designer_clerk", "action": "auth.denied"})
    assert denied.json()["items"], "the refusal is audited like the API's"


def test_a_condition_the_builder_cannot_show_opens_as_jsonlogic(
    page: Any, live_server: LiveServer, lab: str
) -> None:
    open_designer(page, live_server, f"{lab}/intake")
    page.get_by_test_id("field-follow_up_notes").click()
    assert page.get_by_test_id("cond-0-field").input_value() == "visit_kind"
    page.get_by_test_id("cond-raw-toggle").click()
    raw = page.get_by_test_id("prop-visible_if")
    rule = '{"or": [{"==": [{"var": "visit_kind"}, "follow_up"]}, {"!": {"var": "full_name"}}]}'
    raw.fill(rule)
    assert page.get_by_test_id("cond-raw-toggle").is_disabled()  # no way back: it would be lost
    page.get_by_test_id("field-full_name").click()
    page.get_by_test_id("field-follow_up_notes").click()
    assert page.get_by_test_id("prop-visible_if").is_visible()
    assert "builder can" in page.get_by_test_id("condition-builder").inner_text()
    raw.fill("{not json")
    assert page.get_by_test_id("prop-visible_if-error").is_visible()
    raw.fill('{"==": [{"var": "visit_kind"}, "emergency"]}')
    page.get_by_test_id("cond-raw-toggle").click()
    assert page.get_by_test_id("cond-0-value").input_value() == "emergency"


def test_every_palette_type_gives_a_field_the_server_accepts(
    page: Any, live_server: LiveServer, lab: str
) -> None:
    page.goto(f"{live_server.url}/designer/{lab}")  # the app's forms, and "New form"
    assert page.get_by_test_id("designer-form-client").is_visible()
    page.get_by_test_id("designer-new-form").click()
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("prop-form-label").fill("Every type")
    types = page.evaluate(
        "[...document.querySelectorAll('[data-testid^=palette-]')].map(b => b.dataset.type)"
    )
    assert sorted(types) == sorted(FIELD_TYPES)  # every type the engine has
    for kind in types:
        page.get_by_test_id(f"palette-{kind}").click()
        if kind in ("select", "multiselect"):  # a choice needs a real option to be saved
            page.get_by_test_id("option-0-label").fill(f"A {kind}")
        if kind == "computed":  # and a formula its formula (it starts empty)
            page.get_by_test_id("prop-formula").fill("TODAY()")
    page.get_by_test_id("designer-tab-preview").click()
    page.get_by_test_id("preview").locator("[data-field=field_1]").wait_for()
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{lab}/forms/every_type").json()["form"]
    assert [f["type"] for f in form["fields"]] == types
