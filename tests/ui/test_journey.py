"""The whole journey of someone who has never seen Formloom, in Chromium against the demo:
sign in, open the clinic app, build a new form by dragging (with a condition), save it, fill
in the generated form, find the record in the list, open it and see its history."""

from __future__ import annotations

import re
import secrets
from typing import Any

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in


def test_build_a_form_by_dragging_use_it_and_find_the_record(
    browser: Any, live_server: LiveServer
) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    url = live_server.url
    suffix = secrets.token_hex(3)
    label = f"Phone call {suffix}"
    key = f"phone_call_{suffix}"

    # from the home page to the clinic app, and "New form"
    sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
    page.get_by_role("link", name="Clinic CRM").first.click()
    page.wait_for_url(re.compile(r"/apps/clinic_crm$"))
    page.get_by_test_id("design-new").click()
    page.wait_for_selector("[data-testid=designer][data-ready=true]")

    # build it by dragging field types onto the canvas
    page.get_by_test_id("prop-form-label").fill(label)
    assert page.get_by_test_id("prop-form-key").input_value() == key
    canvas = page.get_by_test_id("canvas")
    page.get_by_test_id("palette-text").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Caller")
    page.get_by_test_id("prop-required").check()
    page.get_by_test_id("palette-boolean").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("Call back")
    page.get_by_test_id("palette-textarea").drag_to(canvas)
    page.get_by_test_id("prop-label").fill("When to call")
    # shown only when a call back is wanted
    page.get_by_test_id("cond-add").click()
    page.get_by_test_id("cond-0-field").select_option("call_back")
    value = page.get_by_test_id("cond-0-value")
    if value.evaluate("element => element.tagName") == "SELECT":
        value.select_option("true")
    else:
        value.fill("true")
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    page.wait_for_url(re.compile(rf"/designer/clinic_crm/{key}$"))

    # the app now lists the form; fill in its generated form
    page.goto(f"{url}/apps/clinic_crm")
    page.get_by_test_id(f"new-{key}").click()
    page.wait_for_url(re.compile(rf"/forms/{key}/new$"))
    when = page.locator("[name=when_to_call]")
    assert when.is_hidden()
    page.get_by_test_id("submit").click()  # the caller is required: said at the field
    caller = page.locator("[name=caller]")
    page.wait_for_function(
        "document.querySelector('[name=caller]').getAttribute('aria-invalid') === 'true'"
    )
    caller.fill("Mrs. Zhao")
    page.locator("[name=call_back]").check()
    when.wait_for(state="visible")
    when.fill("After 5 pm")
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/forms/{key}/[0-9a-f]{{32}}$"))
    record_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_test_id("history-entry").count() == 1

    # find it in the list, open it again
    page.goto(f"{url}/apps/clinic_crm/forms/{key}")
    rows = page.get_by_test_id("record-row")
    rows.first.wait_for()
    assert rows.count() == 1 and "Mrs. Zhao" in rows.first.inner_text()
    rows.first.get_by_role("link").first.click()
    page.wait_for_url(re.compile(record_id))
    assert "After 5 pm" in page.locator("main").inner_text()

    with live_server.api() as api:
        stored = api.get(f"/api/records/clinic_crm/{key}/{record_id}").json()
    assert stored["data"] == {
        "caller": "Mrs. Zhao",
        "call_back": True,
        "when_to_call": "After 5 pm",
    }
    context.close()
    assert not errors, errors
