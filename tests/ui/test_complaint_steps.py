"""Issue 17's proof for tabs and templates: rebuild the Complaint form of the new-user run
from a blank form — 9 fields, a dropdown "Category" with four options, an invoice number
shown only for Billing, one reorder — with mouse and keyboard, counting every action as a
person would: a click, a run of keys typed into one input (Enter included), a drag, a choice
in a dropdown. It must take fewer than 32 steps; the count and the steps are in docs/ui.md
("Building a form: the step count"), which this test checks against what it measured.

The same form the long way (clicking "Add an option" for each choice, picking the condition's
field by hand) is counted too: the designer's shortcuts are what makes the difference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import LiveServer

APP = "complaint_steps"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "ui.md"
OPTIONS = ["Billing", "Treatment", "Staff", "Other"]
FIELDS = [  # (palette type, label), in the order they are added
    ("text", "Complainant"),
    ("phone", "Phone"),
    ("date", "Received on"),
    ("select", "Category"),
    ("text", "Invoice number"),
    ("text", "Subject"),
    ("textarea", "What happened"),
    ("boolean", "Wants a reply"),
    ("email", "Email"),
]


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    definition = {
        "format": "formloom.app/v1",
        "key": APP,
        "version": "1.0.0",
        "label": "Complaint steps",
        "forms": [{"key": "ward", "label": "Ward", "fields": [{"key": "name", "type": "text"}]}],
    }
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=definition)
        assert answer.status_code in (200, 201), answer.text
    yield APP


class Steps:
    """Carries out each user action and writes it down: one call, one step."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.done: list[str] = []

    def click(self, testid: str, what: str) -> None:
        self.page.get_by_test_id(testid).click()
        self.done.append(f"click {what}")

    def type(self, text: str, what: str) -> None:
        """Keys into the input that has the focus ("\\n" is Enter)."""
        self.page.keyboard.type(text)
        self.done.append(f"type {what}")

    def choose(self, testid: str, value: str, what: str) -> None:
        self.page.get_by_test_id(testid).select_option(value)
        self.done.append(f"choose {what}")

    def drag_above(self, source: str, target: str, what: str) -> None:
        self.page.get_by_test_id(source).drag_to(
            self.page.get_by_test_id(target), target_position={"x": 40, "y": 4}
        )
        self.done.append(f"drag {what}")


def build(page: Any, server: LiveServer, *, shortcuts: bool) -> list[str]:
    page.goto(f"{server.url}/designer/{APP}")
    steps = Steps(page)
    steps.click("designer-new-form", "New form")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    name = "Complaint" if shortcuts else "Complaint (long way)"
    if not shortcuts:
        steps.click("prop-form-label", "the form's name")
    steps.type(name, f"the form's name “{name}”")
    for kind, label in FIELDS:
        steps.click(f"palette-{kind}", f"{kind} in the palette")
        if kind == "select" and shortcuts:
            # Enter after the name goes to the first option; Enter in an option adds the next
            steps.type(f"{label}\n", f"“{label}” ⏎")
            for option in OPTIONS[:-1]:
                steps.type(f"{option}\n", f"“{option}” ⏎")
            steps.type(OPTIONS[-1], f"“{OPTIONS[-1]}”")
        elif kind == "select":
            steps.type(label, f"“{label}”")
            steps.click("option-0-label", "the first option")
            steps.type(OPTIONS[0], f"“{OPTIONS[0]}”")
            for option in OPTIONS[1:]:
                steps.click("option-add", "Add an option")
                steps.type(option, f"“{option}”")
        else:
            steps.type(label, f"“{label}”")
        if label == "Invoice number":
            # "Add a condition" starts from the dropdown above, on its first option (Billing)
            steps.click("cond-add", "Add a condition (Category is Billing)")
            if not shortcuts:
                steps.choose("cond-0-field", "category", "the field Category")
                steps.choose("cond-0-value", "billing", "the value Billing")
    steps.drag_above("field-subject", "field-complainant", "Subject to the top")
    steps.click("designer-save", "Save")
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    return steps.done


def saved_form(server: LiveServer, key: str) -> dict[str, Any]:
    with server.api() as api:
        answer = api.get(f"/api/apps/{APP}/forms/{key}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["form"])


def check_form(form: dict[str, Any]) -> None:
    fields = form["fields"]
    assert len(fields) == 9
    assert [f["key"] for f in fields] == [
        "subject", "complainant", "phone", "received_on", "category", "invoice_number",
        "what_happened", "wants_a_reply", "email",
    ]  # fmt: skip
    assert [f["type"] for f in fields][:5] == ["text", "text", "phone", "date", "select"]
    category = fields[4]
    assert category["label"] == "Category"
    assert category["options"] == [
        {"value": o.lower(), "label": o} for o in OPTIONS
    ]  # fmt: skip
    assert fields[5]["visible_if"] == {"==": [{"var": "category"}, "billing"]}
    assert sum("visible_if" in f for f in fields) == 1


def documented() -> tuple[int, list[str]]:
    """The count and the steps docs/ui.md gives for the rebuild."""
    text = DOCS.read_text(encoding="utf-8")
    part = text.split("### Building a form: the step count", 1)[1].split("\n### ", 1)[0]
    count = int(re.search(r"takes \*\*(\d+) steps\*\*", part).group(1))  # type: ignore[union-attr]
    listed = re.findall(r"^\d+\. (.+)$", part, flags=re.MULTILINE)
    return count, listed


def test_the_complaint_form_takes_fewer_than_32_steps(
    page: Any, live_server: LiveServer, app: str
) -> None:
    done = build(page, live_server, shortcuts=True)
    assert page.url.endswith(f"/designer/{app}/complaint")
    check_form(saved_form(live_server, "complaint"))
    print(f"\n{len(done)} steps:\n" + "\n".join(f"{n}. {s}" for n, s in enumerate(done, 1)))
    assert len(done) < 32
    assert documented() == (len(done), done)


def test_the_long_way_takes_more(page: Any, live_server: LiveServer, app: str) -> None:
    done = build(page, live_server, shortcuts=False)
    check_form(saved_form(live_server, "complaint_long_way"))
    print(f"\nthe long way: {len(done)} steps")
    assert len(done) >= 32
    text = DOCS.read_text(encoding="utf-8")
    assert f"takes {len(done)} steps, measured by" in text
