"""The generated forms in a real browser: create with live conditions and computed fields,
server errors at their fields, relation pickers, table rows, uploads, edit conflicts."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from tests.ui.conftest import LiveServer
from tests.ui.test_runtime_helpers import APP, create, first_id, unique_phone

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


def test_create_a_patient_then_list_filter_open_and_edit(
    page: Any, live_server: LiveServer
) -> None:
    url = live_server.url
    phone = unique_phone()
    page.goto(f"{url}/apps/{APP}/forms/patient/new")
    form = page.get_by_test_id("record-form")
    page.fill("input[name=name]", "Qin Lan")
    page.fill("input[name=phone]", phone)
    # a condition: the due date appears as soon as "Pregnant" is ticked
    due = form.locator("[data-field=due_date]")
    assert due.is_hidden()
    form.locator("label.tag-choice", has_text="Pregnant").click()
    due.wait_for(state="visible")
    # a computed field, live: age from the date of birth
    page.fill("input[name=birth_date]", "1990-01-15")
    age = form.locator("output[name=age]")
    assert re.fullmatch(r"3\d", age.inner_text()), age.inner_text()
    # a relation picker: search the staff by name, choose with the keyboard
    picker = page.get_by_test_id("relation-primary_doctor")
    picker.fill("Dr")
    page.locator("[role=listbox] [role=option]").first.wait_for()
    chosen = page.locator("[role=listbox] [role=option] .fl-option-title").first.inner_text()
    picker.press("Enter")
    assert page.get_by_test_id("relation-primary_doctor-chosen").inner_text() == chosen
    assert len(page.locator("input[name=primary_doctor]").input_value()) == 32
    # the server refuses (the due date is required while visible): shown at the field
    page.get_by_test_id("submit").click()
    message = due.locator(".fl-error")
    message.wait_for(state="visible")
    assert "required" in message.inner_text()
    assert page.locator("input[name=due_date]").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "due_date"
    page.fill("input[name=due_date]", "2027-03-01")
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/apps/{APP}/forms/patient/[0-9a-f]{{32}}$"))
    record_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_test_id("record-title").inner_text() == "Qin Lan"
    assert page.locator("[data-field=primary_doctor] a").inner_text() == chosen
    assert page.get_by_test_id("history-entry").count() == 1

    # the list shows it; the filter bar narrows it down to it
    page.goto(f"{url}/apps/{APP}/forms/patient")
    rows = page.get_by_test_id("record-row")
    assert rows.count() > 1
    assert page.locator(f"tr[data-id='{record_id}']").is_visible()
    page.get_by_test_id("filter-toggle").click()
    page.get_by_test_id("filter-field").select_option("name")
    page.get_by_test_id("filter-op").select_option("contains")
    page.get_by_test_id("filter-value").fill("Qin L")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_url(re.compile(r"filter="))
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == record_id
    assert json.loads(page.evaluate("new URL(location.href).searchParams.get('filter')")) == {
        "in": ["Qin L", {"var": "name"}]
    }
    # the bar reads its own filter back; a second condition joined by "any"
    assert page.get_by_test_id("filter-value").input_value() == "Qin L"
    page.get_by_test_id("filter-add").click()
    page.get_by_test_id("filter-field").nth(1).select_option("tags")
    page.get_by_test_id("filter-join").select_option("or")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_load_state("load")
    assert rows.count() > 1
    assert page.get_by_test_id("count").get_attribute("data-count") == str(rows.count())

    # open it, edit it, and see the history
    by_phone = quote(json.dumps({"==": [{"var": "phone"}, phone]}))
    page.goto(f"{url}/apps/{APP}/forms/patient?filter={by_phone}")
    rows.first.locator("a").first.click()
    page.wait_for_url(re.compile(record_id))
    page.get_by_test_id("edit").click()
    page.wait_for_url(re.compile(r"/edit$"))
    assert page.locator("input[name=name]").input_value() == "Qin Lan"
    page.fill("input[name=email]", "qin.lan@example.com")
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"{record_id}$"))
    entries = page.get_by_test_id("history-entry")
    assert entries.count() == 2
    assert (
        "Email" in entries.first.inner_text()
        and "qin.lan@example.com" in entries.first.inner_text()
    )
    assert "admin" in entries.first.inner_text()


def test_an_edit_conflict_offers_reload_and_overwrite(page: Any, live_server: LiveServer) -> None:
    record = create(live_server, "patient", {"name": "Bai Yun", "phone": unique_phone()})
    path = f"/api/records/{APP}/patient/{record['id']}"
    edit = f"{live_server.url}/apps/{APP}/forms/patient/{record['id']}/edit"

    def someone_else_sets(notes: str) -> None:
        with live_server.api() as api:
            current = api.get(path)
            answer = api.patch(
                path, json={"data": {"notes": notes}}, headers={"If-Match": current.headers["etag"]}
            )
            assert answer.status_code == 200, answer.text

    page.goto(edit)
    someone_else_sets("changed elsewhere")
    page.fill("input[name=email]", "bai@example.com")
    page.get_by_test_id("submit").click()
    dialog = page.get_by_test_id("conflict")
    dialog.wait_for(state="visible")
    assert re.search(r"Changed by admin at \d\d:\d\d — reload or overwrite\?", dialog.inner_text())
    page.get_by_test_id("conflict-overwrite").click()
    page.wait_for_url(re.compile(rf"{record['id']}$"))
    with live_server.api() as api:
        data = api.get(path).json()["data"]
    assert data["email"] == "bai@example.com" and data["notes"] == "changed elsewhere"

    page.goto(edit)
    someone_else_sets("changed again")
    page.fill("input[name=email]", "lost@example.com")
    page.get_by_test_id("submit").click()
    dialog.wait_for(state="visible")
    page.get_by_test_id("conflict-reload").click()
    page.wait_for_load_state("load")
    page.locator("textarea[name=notes]").wait_for()
    assert page.locator("textarea[name=notes]").input_value() == "changed again"
    assert page.locator("input[name=email]").input_value() == "bai@example.com"


def test_a_visit_with_table_rows_and_an_upload(page: Any, live_server: LiveServer) -> None:
    patient = create(live_server, "patient", {"name": "Tang Yu", "phone": unique_phone()})
    # from the patient's page: "+ New" among her visits fills the patient in
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/{patient['id']}")
    page.get_by_test_id("related-visit").get_by_test_id("new-visit").click()
    page.wait_for_url(re.compile(rf"/forms/visit/new\?patient={patient['id']}$"))
    assert page.get_by_test_id("relation-patient-chosen").inner_text() == "Tang Yu"
    assert page.locator("input[name=patient]").input_value() == patient["id"]
    page.get_by_test_id("relation-doctor").fill("Dr")
    page.locator("[role=listbox]:visible [role=option]").first.click()
    page.select_option("select[name=department]", "general")
    page.locator("label.radio-choice", has_text="First visit").click()
    # computed BMI from weight and height, live
    page.fill("input[name=weight_kg]", "70")
    page.fill("input[name=height_cm]", "175")
    assert page.locator("output[name=bmi]").inner_text() == "22.86"
    # table rows: add three, fill, reorder, remove one
    add = page.get_by_test_id("add-row-procedures")
    for item, quantity in (("Dressing", "2"), ("X-ray", "1"), ("Mistake", "9")):
        add.click()
        row = page.locator("[data-field=procedures] tbody tr").last
        row.locator("input[name$='.item']").fill(item)
        row.locator("input[name$='.quantity']").fill(quantity)
    rows = page.locator("[data-field=procedures] tbody tr")
    rows.nth(2).get_by_test_id("remove-row").click()
    rows.nth(1).get_by_role("button", name="Move row up").click()
    assert page.locator("input[name='procedures.0.item']").input_value() == "X-ray"
    assert page.locator("input[name='procedures.1.item']").input_value() == "Dressing"
    # an upload with a preview
    page.get_by_test_id("file-attachments").set_input_files(
        {"name": "wound.png", "mimeType": "image/png", "buffer": PNG}
    )
    preview = page.locator("[data-field=attachments] [data-testid=file-preview]")
    preview.wait_for()
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 1
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/apps/{APP}/forms/visit/[0-9a-f]{{32}}$"))
    visit_id = page.url.rsplit("/", 1)[1]
    with live_server.api() as api:
        data = api.get(f"/api/records/{APP}/visit/{visit_id}").json()["data"]
    assert data["patient"] == patient["id"]
    assert [(row["item"], row["quantity"]) for row in data["procedures"]] == [
        ("X-ray", 1),
        ("Dressing", 2),
    ]
    assert data["bmi"] == 70 / 1.75**2
    assert data["attachments"][0]["name"] == "wound.png"
    # the record page shows the table and the image, downloadable through the record
    assert page.locator("[data-field=procedures] table tbody tr").count() == 2
    image = page.locator("[data-field=attachments] img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    download = page.request.get(live_server.url + image.get_attribute("src"))
    assert download.status == 200 and download.body() == PNG
    # and the patient's page lists the visit among its related records
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/{patient['id']}")
    related = page.get_by_test_id("related-visit")
    assert related.locator(f"a[href$='{visit_id}']").count() == 1
    assert first_id(live_server, "visit", sort="-id") == visit_id
