"""The designer's save on forms with records: the plan with its classes and record counts,
confirmation for a destructive change, the refusal of a change that needs a migration,
a 422 pointing at the field, and a concurrent save explained."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer

APP = "designer_changes"
DEFINITION = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Designer changes",
    "forms": [
        {
            "key": "contact",
            "label": "Contact",
            "fields": [
                {"key": "name", "type": "text", "label": "Name", "required": True},
                {"key": "note", "type": "text", "label": "Note"},
                {"key": "city", "type": "text", "label": "City"},
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=DEFINITION)
        assert answer.status_code in (200, 201), answer.text
        for n in range(3):
            made = api.post(
                f"/api/records/{APP}/contact", json={"data": {"name": f"P{n}", "note": "x"}}
            )
            assert made.status_code == 201, made.text
    yield APP


def open_designer(page: Any, server: LiveServer, path: str) -> None:
    page.goto(f"{server.url}/designer/{path}")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")


def wait_status(page: Any, kind: str) -> str:
    page.wait_for_function(
        f"document.querySelector('[data-testid=designer-status]').dataset.kind === '{kind}'"
    )
    return str(page.get_by_test_id("designer-status").inner_text())


def test_destructive_change_shows_the_plan_and_asks(
    page: Any, live_server: LiveServer, app: str
) -> None:
    open_designer(page, live_server, f"{app}/contact")
    page.get_by_test_id("field-note").click()
    page.get_by_test_id("designer-delete").click()
    page.get_by_test_id("designer-save").click()
    dialog = page.get_by_test_id("designer-plan")
    dialog.wait_for()
    change = dialog.locator("[data-testid=plan-change][data-field=note]")
    assert change.get_attribute("data-class") == "destructive"
    assert "3 records" in change.inner_text()
    assert change.locator(".badge.destructive").is_visible()
    # cancelling changes nothing
    page.get_by_test_id("designer-cancel").click()
    assert page.get_by_test_id("designer-dirty").is_visible()
    with live_server.api() as api:
        keys = [
            f["key"] for f in api.get(f"/api/apps/{app}/forms/contact").json()["form"]["fields"]
        ]
    assert "note" in keys
    page.get_by_test_id("designer-save").click()
    dialog.wait_for()
    page.get_by_test_id("designer-confirm").click()
    assert "revision" in wait_status(page, "ok")
    with live_server.api() as api:
        keys = [
            f["key"] for f in api.get(f"/api/apps/{app}/forms/contact").json()["form"]["fields"]
        ]
    assert keys == ["name", "city"]


def test_a_change_that_needs_a_migration_is_refused_clearly(
    page: Any, live_server: LiveServer
) -> None:
    open_designer(page, live_server, "clinic_crm/patient")
    # a new required field the records have no value for (a type change is offered as a
    # conversion instead: test_designer_formulas.py)
    page.get_by_test_id("field-name").click()
    page.get_by_test_id("palette-text").click()
    page.keyboard.type("Ward")
    page.get_by_test_id("prop-required").check()
    page.get_by_test_id("designer-save").click()
    dialog = page.get_by_test_id("designer-plan")
    dialog.wait_for()
    change = dialog.locator("[data-testid=plan-change][data-field=ward]")
    assert change.get_attribute("data-class") == "needs_migration"
    assert re.search(r"[1-9]\d* records", change.inner_text())
    blocked = dialog.get_by_test_id("plan-blocked")
    assert blocked.is_visible()
    assert "ask IT to convert the records" in blocked.inner_text()
    assert (
        "Ward:" in blocked.inner_text() and "records would need a new value" in blocked.inner_text()
    )
    assert "migrations" not in blocked.inner_text() and "JsonLogic" not in blocked.inner_text()
    assert page.get_by_test_id("designer-confirm").is_hidden()
    page.get_by_test_id("designer-cancel").click()
    with live_server.api() as api:
        fields = api.get("/api/apps/clinic_crm/forms/patient").json()["form"]["fields"]
    assert "ward" not in [f["key"] for f in fields]


def test_validation_errors_point_at_the_field(page: Any, live_server: LiveServer, app: str) -> None:
    open_designer(page, live_server, f"{app}/contact")
    page.get_by_test_id("field-city").click()
    page.get_by_test_id("prop-min_length").fill("10")
    page.get_by_test_id("prop-max_length").fill("5")
    page.get_by_test_id("field-name").click()  # select another field: the error must lead back
    page.get_by_test_id("designer-save").click()
    wait_status(page, "error")
    assert "has-error" in page.get_by_test_id("field-city").get_attribute("class")
    assert page.get_by_test_id("field-city").get_attribute("aria-selected") == "true"
    message = page.get_by_test_id("prop-min_length-error")
    assert message.is_visible()
    assert "greater than" in message.inner_text()
    # a key the browser can check itself is marked before anything is sent
    page.get_by_test_id("prop-min_length").fill("")
    page.get_by_test_id("prop-advanced-toggle").click()  # the key is a technical setting
    page.get_by_test_id("prop-key").fill("name")
    assert "already uses" in page.get_by_test_id("prop-key-error").inner_text()
    page.get_by_test_id("prop-key").fill("9lives")
    assert page.get_by_test_id("prop-key-error").is_visible()
    page.get_by_test_id("prop-key").fill("town")
    assert page.get_by_test_id("prop-key-error").is_hidden()


def test_someone_elses_save_meanwhile_is_explained(
    page: Any, live_server: LiveServer, app: str
) -> None:
    open_designer(page, live_server, f"{app}/contact")
    with live_server.api() as api:
        read = api.get(f"/api/apps/{app}/forms/contact")
        form = read.json()["form"]
        form["label"] = "Contact person"
        saved = api.put(
            f"/api/apps/{app}/forms/contact", json=form, headers={"If-Match": read.headers["etag"]}
        )
        assert saved.status_code == 200, saved.text
    page.get_by_test_id("field-city").click()
    page.get_by_test_id("prop-help").fill("Where they live")
    page.get_by_test_id("designer-save").click()
    conflict = page.get_by_test_id("designer-conflict")
    conflict.wait_for()
    assert "revision" in conflict.inner_text()
    # review and overwrite: the plan (against their version) is shown, then applied
    page.get_by_test_id("designer-overwrite").click()
    page.get_by_test_id("designer-plan").wait_for()
    page.get_by_test_id("designer-confirm").click()
    wait_status(page, "ok")
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/contact").json()["form"]
    assert form["label"] == "Contact"
    assert next(f for f in form["fields"] if f["key"] == "city")["help"] == "Where they live"


def test_removing_a_field_other_parts_of_the_app_name_is_explained(
    page: Any, live_server: LiveServer
) -> None:
    open_designer(page, live_server, "clinic_crm/patient")
    page.get_by_test_id("field-notes").click()
    page.keyboard.press("Delete")
    page.get_by_test_id("designer-save").click()
    wait_status(page, "error")
    problems = page.get_by_test_id("designer-problems")
    assert problems.is_visible()
    assert "/permissions/" in problems.inner_text()
    assert "'notes' is not a field" in problems.inner_text()
    page.get_by_test_id("designer-undo").click()  # the way out the message suggests
    assert page.get_by_test_id("designer-dirty").is_hidden()
