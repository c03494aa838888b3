"""People and numbers (issue 17, item 9), in a real browser: a member picker finds people of
the app as you type (display name, username as the second line) and the record, the list
and the form show their names, never their ids; "default: current user" fills in the nurse
who saves; a department is picked from the app's departments; an auto-number is given by the
server — two complaints made in the form are CP-<year>-0001 and CP-<year>-0002."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LiveServer, sign_in

APP = "people_lab"
PASSWORD = "correct horse battery staple"
LAB = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "People lab",
    "locales": ["en", "zh-CN"],
    "roles": [{"key": "nurse", "label": "Nurse"}],
    "permissions": [{"form": "complaint", "roles": ["nurse"], "actions": ["read", "create"]}],
    "forms": [
        {
            "key": "complaint",
            "label": "Complaint",
            "title_field": "no",
            "fields": [
                {"key": "no", "type": "autonumber", "label": "Number",
                 "format": "CP-{YYYY}-{0000}", "reset": "yearly"},
                {"key": "subject", "type": "text", "label": "Subject", "required": True},
                {"key": "handler", "type": "user", "label": "Handler"},
                {"key": "reporter", "type": "user", "label": "Reported by",
                 "default_current": True},
                {"key": "ward", "type": "department", "label": "Ward"},
            ],
        }
    ],
}  # fmt: skip
PEOPLE = [
    ("pl_wang", "Wang Fang", "ICU"),
    ("pl_zhou", "Zhou Min", "Surgery"),
    ("pl_xu", "Xu Lei", "ICU"),
]


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> dict[str, str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=LAB)
        assert answer.status_code in (200, 201), answer.text
        ids = {}
        for username, name, ward in PEOPLE:
            made = api.post(
                "/api/users",
                json={"username": username, "display_name": name, "password": PASSWORD,
                      "attributes": {"department": ward}},
            )  # fmt: skip
            assert made.status_code == 201, made.text
            roles = api.put(f"/api/users/{username}/roles", json={APP: ["nurse"]})
            assert roles.status_code == 200, roles.text
            ids[username] = made.json()["id"]
        return ids


@pytest.fixture
def nurse(browser: Any, live_server: LiveServer, lab: dict[str, str]) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "pl_wang", PASSWORD)
    yield page
    context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"


def fill_complaint(page: Any, server: LiveServer, subject: str, handler: str | None) -> str:
    page.goto(f"{server.url}/apps/{APP}/forms/complaint/new")
    page.get_by_test_id("autonumber-no").wait_for()
    assert page.get_by_test_id("autonumber-no").inner_text() == "Given when saved"
    page.fill("input[name=subject]", subject)
    if handler is not None:
        picker = page.get_by_test_id("user-handler")
        picker.fill(handler[:3].lower())
        options = page.locator("[role=listbox]:visible [role=option]")
        # the people of the app whose name or username holds what was typed, as you type
        expect(options.locator(".fl-option-title")).to_have_text([handler])
        expect(options.locator(".fl-option-sub")).to_have_text(["pl_zhou"])
        picker.press("Enter")
        chosen = page.get_by_test_id("user-handler-chosen")
        assert chosen.inner_text().startswith(handler)
    ward = page.get_by_test_id("department-ward")
    ward.locator("option[value=ICU]").wait_for(state="attached")
    assert ward.locator("option").all_inner_texts()[1:] == ["ICU", "Surgery"]
    ward.select_option("ICU")
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/apps/{APP}/forms/complaint/[0-9a-f]{{32}}$"))
    return str(page.url.rsplit("/", 1)[1])


def test_pick_people_by_name_and_number_complaints(
    nurse: Any, live_server: LiveServer, lab: dict[str, str]
) -> None:
    year = datetime.now(ZoneInfo("UTC")).year  # the demo server's clock is UTC
    fill_complaint(nurse, live_server, "noisy ward", "Zhou Min")
    # the record page: the number, and people by name (the reporter is the nurse who saved)
    assert nurse.get_by_test_id("record-title").inner_text() == f"CP-{year}-0001"
    assert nurse.locator("[data-field=handler]").inner_text().strip().endswith("Zhou Min")
    assert "Wang Fang" in nurse.locator("[data-field=reporter]").inner_text()
    page_text = nurse.locator("main").inner_text()
    for user_id in lab.values():
        assert user_id not in page_text
    fill_complaint(nurse, live_server, "cold food", None)
    assert nurse.get_by_test_id("record-title").inner_text() == f"CP-{year}-0002"
    # the list: numbers and names, never ids
    nurse.goto(f"{live_server.url}/apps/{APP}/forms/complaint")
    rows = nurse.locator("table tbody tr")
    rows.first.wait_for()
    listed = nurse.locator("main").inner_text()
    assert f"CP-{year}-0001" in listed and f"CP-{year}-0002" in listed
    assert "Zhou Min" in listed and "Wang Fang" in listed
    for user_id in lab.values():
        assert user_id not in listed
    # the filter bar picks a person by name: the handler's complaints only
    nurse.get_by_test_id("filter-toggle").click()
    nurse.get_by_test_id("filter-field").select_option("handler")
    nurse.get_by_test_id("filter-op").select_option("==")
    picker = nurse.locator(".filter-value input[role=combobox]")
    picker.fill("zhou")
    expect(nurse.locator(".filter-value [role=option] .fl-option-title")).to_have_text(["Zhou Min"])
    picker.press("Enter")
    nurse.get_by_test_id("filter-apply").click()
    nurse.wait_for_url(re.compile(r"filter="))
    sent = json.loads(nurse.evaluate("new URL(location.href).searchParams.get('filter')"))
    assert sent == {"==": [{"var": "handler"}, lab["pl_zhou"]]}
    expect(nurse.locator("table tbody tr")).to_have_count(1)
    assert f"CP-{year}-0001" in nurse.locator("table tbody").inner_text()
    # the filter row reads back the person by name
    expect(nurse.locator(".filter-value .fl-person")).to_have_text(["Zhou Min×"])


def test_the_designer_adds_people_and_numbers(
    page: Any, live_server: LiveServer, lab: dict[str, str]
) -> None:
    page.goto(f"{live_server.url}/designer/{APP}/new")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("prop-form-label").fill("Incident")
    canvas = page.get_by_test_id("canvas")
    page.get_by_test_id("palette-autonumber").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Incident number")
    page.get_by_test_id("prop-format").fill("IN-{YY}{MM}-{000}")
    sample = page.get_by_test_id("autonumber-sample")
    now = datetime.now(ZoneInfo("UTC"))
    assert sample.inner_text() == f"IN-{now.year % 100:02d}{now.month:02d}-001"
    problem = page.get_by_test_id("autonumber-problem")
    assert problem.is_hidden()
    # said at once, as the server would refuse it: a monthly count needs the month
    page.get_by_test_id("prop-format").fill("IN-{YY}-{000}")
    page.get_by_test_id("prop-reset").select_option("monthly")
    expect(problem).to_have_text(
        "To count from 1 again then, the format must show that part of the date."
    )
    page.get_by_test_id("prop-format").fill("IN-{YY}{MM}-{000}-{00}")
    expect(problem).to_have_text("The format needs exactly one counter, such as {0000}.")
    page.get_by_test_id("prop-format").fill("IN-{YY}{MM}-{000}")
    expect(problem).to_be_hidden()
    page.get_by_test_id("palette-user").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Assigned to")
    page.get_by_test_id("prop-multiple").check()
    page.get_by_test_id("prop-default_current").check()
    page.get_by_test_id("palette-department").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Ward")
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{APP}/forms/incident").json()["form"]
    fields = {f["key"]: {k: v for k, v in f.items() if k not in ("key", "label")}
              for f in form["fields"]}  # fmt: skip
    assert fields == {
        "incident_number": {"type": "autonumber", "format": "IN-{YY}{MM}-{000}",
                            "reset": "monthly"},
        "assigned_to": {"type": "user", "multiple": True, "default_current": True},
        "ward": {"type": "department"},
    }  # fmt: skip


def test_people_and_numbers_in_chinese(
    browser: Any, live_server: LiveServer, lab: dict[str, str]
) -> None:
    """The same form and designer in zh-CN: the number's placeholder, the picker's hint and
    the designer's numbering settings in Chinese words; names, never ids."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "pl_xu", PASSWORD)
    page.goto(f"{live_server.url}/apps/{APP}/forms/complaint/new")
    expect(page.get_by_test_id("autonumber-no")).to_have_text("保存时生成")
    picker = page.get_by_test_id("user-handler")
    expect(picker).to_have_attribute("placeholder", "输入姓名…")
    picker.fill("wang")
    options = page.locator("[role=listbox]:visible [role=option]")
    expect(options.locator(".fl-option-title")).to_have_text(["Wang Fang"])
    picker.press("Enter")
    assert page.get_by_test_id("user-handler-chosen").inner_text().startswith("Wang Fang")
    assert lab["pl_wang"] not in page.locator("main").inner_text()
    context.close()
    assert not errors, errors
