"""Field width (issue 17, item 9), in a real browser: a field's ``width`` (1 to 4 quarters of a
row) lays out the generated form and the record page — a three-quarter name beside a
quarter age, four quarter fields on one row, the whole row, half a row for a long text that
asks for it — while on a 390 px phone every field takes the whole row; the designer sets it
("Width" in the field's General settings) and saves it with the form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in

APP = "width_lab"
LAB = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Width lab",
    "locales": ["en", "zh-CN"],
    "roles": [{"key": "clerk", "label": "Clerk"}],
    "forms": [
        {
            "key": "contact",
            "label": {"en": "Contact", "zh-CN": "联系人"},
            "fields": [
                {"key": "name", "type": "text", "label": "Name", "width": 3},
                {"key": "age", "type": "integer", "label": "Age", "width": 1},
                {"key": "phone", "type": "phone", "label": "Phone", "width": 1},
                {"key": "email", "type": "email", "label": "Email", "width": 1},
                {"key": "city", "type": "text", "label": "City", "width": 1},
                {"key": "zip", "type": "text", "label": "Zip", "width": 1},
                {"key": "kind", "type": "text", "label": "Kind"},
                {"key": "note", "type": "text", "label": "Note", "width": 4},
                {"key": "story", "type": "textarea", "label": "Story", "width": 2},
                {"key": "remarks", "type": "textarea", "label": "Remarks"},
            ],
        }
    ],
}
VALUES = {"name": "Lu Xun", "age": 55, "phone": "+86 138 0000 0001", "email": "lu@example.cn",
          "city": "Shaoxing", "zip": "312000", "kind": "writer", "note": "a note",
          "story": "a story", "remarks": "remarks"}  # fmt: skip
#: Each field's box (x, y, width) on the page, by key.
BOXES = """(selector) => Object.fromEntries([...document.querySelectorAll(selector)].map((node) => {
  const box = node.getBoundingClientRect();
  return [node.dataset.field, [Math.round(box.x), Math.round(box.y), Math.round(box.width)]];
}))"""


@pytest.fixture(scope="module")
def record_id(live_server: LiveServer) -> str:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=LAB)
        assert answer.status_code in (200, 201), answer.text
        made = api.post(f"/api/records/{APP}/contact", json={"data": VALUES})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


@pytest.fixture
def tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []

    def opened(width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
        return page

    yield opened
    for context in contexts:
        context.close()


def _check_desktop(boxes: dict[str, list[int]]) -> None:
    name, age = boxes["name"], boxes["age"]
    assert name[1] == age[1]  # one row
    assert 2.6 < name[2] / age[2] < 3.4, (name, age)  # three quarters beside a quarter
    quarters = [boxes[key] for key in ("phone", "email", "city", "zip")]
    assert len({box[1] for box in quarters}) == 1, quarters  # four on one row
    assert all(abs(box[2] - age[2]) <= 2 for box in quarters)
    whole = boxes["note"][2]
    assert abs(name[2] + age[2] - whole) < 40  # the whole row (less one gap)
    half = boxes["kind"][2]  # unset: half a row
    assert abs(2 * half - whole) < 40
    assert abs(boxes["story"][2] - half) <= 2  # a long text asking for half a row gets it
    assert abs(boxes["remarks"][2] - whole) <= 2  # unset long text: the whole row


def test_the_form_and_the_record_page_follow_the_widths(
    tab: Any, live_server: LiveServer, record_id: str
) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/contact/new")
    page.locator("[data-field=remarks]").wait_for()
    _check_desktop(page.evaluate(BOXES, ".fl-section > .fl-field"))
    page.goto(f"{live_server.url}/apps/{APP}/forms/contact/{record_id}")
    _check_desktop(page.evaluate(BOXES, ".fields > .field-view"))


def test_on_a_phone_every_field_takes_the_whole_row(
    tab: Any, live_server: LiveServer, record_id: str
) -> None:
    phone = tab(390, 844)
    for path, selector in (
        ("new", ".fl-section > .fl-field"),
        (record_id, ".fields > .field-view"),
    ):
        phone.goto(f"{live_server.url}/apps/{APP}/forms/contact/{path}")
        phone.locator(f"{selector}[data-field=remarks]").wait_for()
        boxes = phone.evaluate(BOXES, selector)
        widths = {box[2] for box in boxes.values()}
        assert max(widths) - min(widths) <= 2, boxes  # one column
        assert len({box[1] for box in boxes.values()}) == len(boxes)  # one field a row
        assert phone.evaluate("document.scrollingElement.scrollWidth <= innerWidth")


def test_the_designer_sets_a_fields_width(
    tab: Any, live_server: LiveServer, record_id: str
) -> None:
    page = tab(1400, 900)
    page.goto(f"{live_server.url}/designer/{APP}/contact")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("field-zip").click()
    width = page.get_by_test_id("prop-width")
    assert width.input_value() == "1"
    assert page.get_by_label("Width").count() == 1
    width.select_option("4")
    page.get_by_test_id("field-kind").click()
    assert page.get_by_test_id("prop-width").input_value() == ""  # unset: automatic
    page.get_by_test_id("prop-width").select_option("1")
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        form = api.get(f"/api/apps/{APP}/forms/contact").json()["form"]
        fields = {field["key"]: field for field in form["fields"]}
        assert fields["zip"]["width"] == 4 and fields["kind"]["width"] == 1
        # back to automatic: the attribute goes
    page.get_by_test_id("field-kind").click()
    page.get_by_test_id("prop-width").select_option("")
    page.get_by_test_id("designer-save").click()
    page.wait_for_function("!document.querySelector('[data-testid=designer-dirty]')?.offsetParent")
    with live_server.api() as api:
        form = api.get(f"/api/apps/{APP}/forms/contact").json()["form"]
    assert "width" not in {field["key"]: field for field in form["fields"]}["kind"]
