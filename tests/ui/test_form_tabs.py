"""Tabs (issue 17, item 9; docs/forms.md, Tabs), in a real browser: a form laid out as tabs
shows one tab per section with the WAI-ARIA tabs pattern (roles, arrow keys, Home/End), the
fields before the first section above the strip; a refused save counts each tab's errors
(fields hidden by a condition not counted) and opens the first tab with one; print shows
every tab's fields; on a 390 px phone the strip scrolls instead of wrapping; the designer
shows the strip on its canvas, moves a field to another tab and saves the setting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in

APP = "tabs_lab"
LAB = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Tabs lab",
    "locales": ["en", "zh-CN"],
    "forms": [
        {
            "key": "intake",
            "label": {"en": "Intake", "zh-CN": "登记"},
            "layout": "tabs",
            "fields": [
                {"key": "name", "type": "text", "label": "Name", "required": True},
                {"key": "contact", "type": "section", "label": {"en": "Contact", "zh-CN": "联系"}},
                {"key": "phone", "type": "phone", "label": "Phone", "required": True},
                {"key": "email", "type": "email", "label": "Email", "required": True},
                {"key": "history", "type": "section", "label": {"en": "History", "zh-CN": "病史"}},
                {"key": "smoker", "type": "boolean", "label": "Smoker"},
                {"key": "packs", "type": "integer", "label": "Packs a day", "required": True,
                 "visible_if": {"==": [{"var": "smoker"}, True]}},
                {"key": "allergies", "type": "text", "label": "Allergies", "required": True},
                {"key": "consent", "type": "section", "label": {"en": "Consent", "zh-CN": "同意"},
                 "visible_if": {"==": [{"var": "smoker"}, True]}},
                {"key": "signed", "type": "boolean", "label": "Signed"},
                {"key": "insurance", "type": "section", "label": "Insurance"},
                {"key": "insurer", "type": "text", "label": "Insurer"},
                {"key": "policy", "type": "text", "label": "Policy number"},
                {"key": "billing", "type": "section", "label": "Billing address"},
                {"key": "street", "type": "text", "label": "Street"},
            ],
        }
    ],
}  # fmt: skip
STRIP = "[data-testid=form-tabs]"


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=LAB)
        assert answer.status_code in (200, 201), answer.text
    yield APP


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement?.dataset?.testid || ''"))


def selected(page: Any) -> str:
    return str(page.locator(f"{STRIP} [role=tab][aria-selected=true]").get_attribute("data-testid"))


def test_tabs_follow_the_aria_pattern(page: Any, live_server: LiveServer, app: str) -> None:
    page.goto(f"{live_server.url}/apps/{app}/forms/intake/new")
    strip = page.locator(STRIP)
    strip.wait_for()
    assert strip.get_attribute("role") == "tablist"
    tabs = strip.locator("[role=tab]:visible")
    # the condition hides the Consent tab until the person smokes
    assert tabs.evaluate_all("(tabs) => tabs.map((t) => t.textContent)") == [
        "Contact", "History", "Insurance", "Billing address"
    ]  # fmt: skip
    # the field before the first section is above the strip, on every tab
    assert page.get_by_label("Name").is_visible()
    assert page.get_by_label("Phone").is_visible()
    assert not page.get_by_label("Allergies").is_visible()
    for tab in tabs.all():
        panel = page.locator(f"#{tab.get_attribute('aria-controls')}")
        assert panel.get_attribute("role") == "tabpanel"
        assert panel.get_attribute("aria-labelledby") == tab.get_attribute("id")
    # one tab in the Tab order; arrows move and open, Home/End jump
    assert strip.locator("[role=tab][tabindex='0']").count() == 1
    page.get_by_test_id("tab-contact").focus()
    page.keyboard.press("ArrowRight")
    assert focused(page) == "tab-history" == selected(page)
    assert page.get_by_label("Allergies").is_visible()
    assert not page.get_by_label("Phone").is_visible()
    page.keyboard.press("End")
    assert focused(page) == "tab-billing"
    page.keyboard.press("ArrowRight")  # wraps
    assert focused(page) == "tab-contact"
    page.keyboard.press("ArrowLeft")
    assert focused(page) == "tab-billing"
    page.keyboard.press("Home")
    assert selected(page) == "tab-contact"
    # Tab leaves the strip for the panel's first field
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "phone"
    # the condition shows the Consent tab, in its place
    page.get_by_test_id("tab-history").click()
    page.get_by_label("Smoker").check()
    assert tabs.evaluate_all("(tabs) => tabs.map((t) => t.dataset.testid)") == [
        "tab-contact", "tab-history", "tab-consent", "tab-insurance", "tab-billing"
    ]  # fmt: skip


def test_errors_are_counted_per_tab_and_open_the_first(
    page: Any, live_server: LiveServer, app: str
) -> None:
    page.goto(f"{live_server.url}/apps/{app}/forms/intake/new")
    page.locator(STRIP).wait_for()
    page.get_by_label("Name").fill("Ann")
    page.get_by_test_id("tab-billing").click()
    page.get_by_test_id("submit").click()
    badge = page.get_by_test_id("tab-contact-errors")
    badge.wait_for()
    # phone and e-mail on Contact, allergies on History; packs is hidden: not counted
    assert badge.inner_text() == "2"
    assert page.get_by_test_id("tab-history-errors").inner_text() == "1"
    assert page.get_by_test_id("tab-insurance-errors").is_hidden()
    assert "2 with errors" in str(page.get_by_test_id("tab-contact").get_attribute("aria-label"))
    assert selected(page) == "tab-contact"
    assert page.evaluate("document.activeElement.name") == "phone"
    # fixing the fields clears the counts
    page.get_by_label("Phone").fill("+44 20 7946 0000")
    page.get_by_label("Email").fill("ann@example.org")
    assert badge.inner_text() == "" or badge.is_hidden()
    page.get_by_test_id("tab-history").click()
    page.get_by_label("Smoker").check()
    page.get_by_test_id("submit").click()
    # now packs is shown and required; allergies still missing; both on History
    page.wait_for_function(
        "document.querySelector('[data-testid=tab-history-errors]').textContent === '2'"
    )
    assert badge.is_hidden()
    assert selected(page) == "tab-history"


def test_print_shows_every_tab(page: Any, live_server: LiveServer, app: str) -> None:
    page.goto(f"{live_server.url}/apps/{app}/forms/intake/new")
    page.locator(STRIP).wait_for()
    page.emulate_media(media="print")
    assert page.locator(STRIP).is_hidden()
    for name in ["Phone", "Allergies", "Insurer", "Street"]:
        assert page.get_by_label(name).is_visible(), name
    headings = page.locator(".fl-section-title:visible").all_inner_texts()
    assert headings == ["Contact", "History", "Insurance", "Billing address"]
    page.emulate_media(media="screen")
    assert not page.get_by_label("Street").is_visible()


def test_the_strip_scrolls_on_a_phone(browser: Any, live_server: LiveServer, app: str) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    try:
        phone = context.new_page()
        sign_in(phone, live_server, ADMIN, ADMIN_PASSWORD)
        phone.goto(f"{live_server.url}/apps/{app}/forms/intake/new")
        strip = phone.locator(STRIP)
        strip.wait_for()
        box = strip.evaluate(
            """(strip) => ({tops: [...strip.querySelectorAll('[role=tab]:not([hidden])')]
                 .map((t) => Math.round(t.getBoundingClientRect().top)),
               scroll: strip.scrollWidth, client: strip.clientWidth,
               page: document.documentElement.scrollWidth})"""
        )
        assert len(set(box["tops"])) == 1, box  # one row
        assert box["scroll"] > box["client"], box  # scrolls sideways
        assert box["page"] <= 390, box  # and the page itself does not
        phone.keyboard.press("Tab")
        phone.get_by_test_id("tab-billing").click()
        assert phone.get_by_label("Street").is_visible()
    finally:
        context.close()


def card_order(page: Any) -> list[str]:
    return list(
        page.evaluate(
            "[...document.querySelectorAll('[data-testid=canvas] .field-card')]"
            ".map((card) => card.dataset.testid.slice(6))"
        )
    )


def saved_ok(page: Any) -> None:
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )


def test_designer_shows_tabs_and_moves_fields_between_them(
    page: Any, live_server: LiveServer, app: str
) -> None:
    page.goto(f"{live_server.url}/designer/{app}/intake")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    strip = page.get_by_test_id("canvas-tabs")
    assert strip.locator("button").all_inner_texts() == [
        "Contact", "History", "Consent", "Insurance", "Billing address"
    ]  # fmt: skip
    # pressing a tab selects its section; the tab is marked as the current one
    page.get_by_test_id("canvas-tab-insurance").click()
    assert page.get_by_test_id("field-insurance").get_attribute("aria-selected") == "true"
    assert page.get_by_test_id("canvas-tab-insurance").get_attribute("aria-current") == "true"
    # mouse: drag the policy number onto the Contact tab (it goes to that tab's end)
    page.get_by_test_id("field-policy").drag_to(page.get_by_test_id("canvas-tab-contact"))
    assert card_order(page).index("policy") == card_order(page).index("email") + 1
    assert page.get_by_test_id("canvas-tab-contact").get_attribute("aria-current") == "true"
    # keyboard: Alt+ArrowUp on the first field of a tab moves it into the tab before
    page.get_by_test_id("field-street").focus()
    page.keyboard.press("Alt+ArrowUp")
    assert card_order(page).index("street") == card_order(page).index("insurer") + 1
    # "Place in" names tabs
    place = page.get_by_test_id("prop-parent")
    assert "Tab: Insurance" in place.inner_text()
    assert "Above the tabs" in place.inner_text()
    page.keyboard.press("Control+s")
    saved_ok(page)
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/intake").json()["form"]
    keys = [f["key"] for f in form["fields"]]
    assert keys[:5] == ["name", "contact", "phone", "email", "policy"]
    assert keys[-3:] == ["insurer", "street", "billing"]
    assert form["layout"] == "tabs"


def test_designer_turns_tabs_on_and_off(page: Any, live_server: LiveServer, app: str) -> None:
    page.goto(f"{live_server.url}/designer/{app}/new")
    page.wait_for_selector("[data-testid=designer][data-ready=true]")
    page.get_by_test_id("prop-form-label").fill("Referral")
    page.get_by_test_id("palette-text").click()
    page.keyboard.type("Doctor")
    assert page.get_by_test_id("canvas-tabs").is_hidden()
    page.get_by_test_id("designer-form-settings").click()
    page.get_by_test_id("prop-layout").check()
    # a form without sections gets a first tab holding the fields so far
    assert page.get_by_test_id("canvas-tabs").locator("button").all_inner_texts() == [
        "General information"
    ]
    assert card_order(page) == ["general", "doctor"]
    page.get_by_test_id("palette-section").click()
    page.keyboard.type("Reason")
    page.get_by_test_id("palette-textarea").click()
    page.keyboard.type("Why")
    assert page.get_by_test_id("canvas-tabs").locator("button").all_inner_texts() == [
        "General information", "Reason"
    ]  # fmt: skip
    # the preview shows the tabs as the generated form will
    page.get_by_test_id("designer-tab-preview").click()
    preview = page.get_by_test_id("preview")
    preview.locator("[role=tablist] [role=tab]").first.wait_for()
    assert preview.locator("[role=tab]").all_inner_texts() == ["General information", "Reason"]
    page.get_by_test_id("designer-save").click()
    saved_ok(page)
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/referral").json()["form"]
    assert form["layout"] == "tabs"
    assert [f["key"] for f in form["fields"]] == ["general", "doctor", "reason", "why"]
    # off again: sections one under another, saved without the setting
    page.get_by_test_id("designer-form-settings").click()
    page.get_by_test_id("prop-layout").uncheck()
    assert page.get_by_test_id("canvas-tabs").is_hidden()
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').textContent.includes('revision')"
        " && !document.querySelector('dialog[open]')"
        " || document.querySelector('dialog[open]')"
    )
    if page.locator("dialog[open]").count():
        page.get_by_test_id("designer-confirm").click()
    saved_ok(page)
    with live_server.api() as api:
        form = api.get(f"/api/apps/{app}/forms/referral").json()["form"]
    assert "layout" not in form or form["layout"] == "sections"


def test_tabs_in_chinese(browser: Any, live_server: LiveServer, app: str) -> None:
    with live_server.api() as api:
        made = api.post(
            "/api/users",
            json={"username": "tabs_zh", "password": "zh-admin-pw-7", "is_admin": True},
        )
        assert made.status_code == 201, made.text
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        sign_in(tab, live_server, "tabs_zh", "zh-admin-pw-7")
        tab.goto(f"{live_server.url}/apps/{app}/forms/intake/new")
        strip = tab.locator(STRIP)
        strip.wait_for()
        assert strip.locator("[role=tab]:visible").all_inner_texts()[:2] == ["联系", "病史"]
        tab.get_by_label("Name").fill("Ann")
        tab.get_by_test_id("submit").click()
        tab.get_by_test_id("tab-contact-errors").wait_for()
        assert "2 处错误" in str(tab.get_by_test_id("tab-contact").get_attribute("aria-label"))
        tab.goto(f"{live_server.url}/designer/{app}/intake")
        tab.wait_for_selector("[data-testid=designer][data-ready=true]")
        setting = tab.get_by_test_id("properties").locator("[data-prop=layout]")
        assert "每个分组显示为一个标签页" in setting.inner_text()
        tab.get_by_test_id("canvas-tab-contact").click()
        tab.get_by_test_id("field-phone").click()
        assert "标签页：联系" in tab.get_by_test_id("prop-parent").inner_text()
        assert "标签页上方" in tab.get_by_test_id("prop-parent").inner_text()
    finally:
        context.close()


def test_the_record_page_shows_the_same_tabs(page: Any, live_server: LiveServer, app: str) -> None:
    data = {"name": "Ann", "phone": "+44 20 7946 0000", "email": "ann@example.org",
            "allergies": "none", "insurer": "Mutual", "street": "1 High St"}  # fmt: skip
    with live_server.api() as api:
        made = api.post(f"/api/records/{app}/intake", json={"data": data})
        assert made.status_code == 201, made.text
    page.goto(f"{live_server.url}/apps/{app}/forms/intake/{made.json()['id']}")
    strip = page.locator(STRIP)
    strip.wait_for()
    names = strip.locator("[role=tab]").all_inner_texts()
    assert names[:2] == ["Contact", "History"]
    assert page.locator("[data-field=name]").is_visible()  # above the tabs
    assert page.locator("[data-field=phone]").is_visible()
    assert not page.locator("[data-field=street]").is_visible()
    page.get_by_test_id("tab-contact").focus()
    page.keyboard.press("End")
    assert page.locator("[data-field=street]").is_visible()
    assert not page.locator("[data-field=phone]").is_visible()
    page.emulate_media(media="print")
    for key in ["phone", "allergies", "insurer", "street"]:
        assert page.locator(f"[data-field={key}]").is_visible(), key
