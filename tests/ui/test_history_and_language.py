"""Two Chinese leftovers of issue 17 (item 12), in a real browser: a record's history names a
rule that changed it by the rule's label in the reader's language (not ``rule:last_visit``),
and a language chosen on one device reaches the user's other devices at their next page,
not at their next sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, PASSWORD, create, make_user, unique_phone


@pytest.fixture
def open_tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """``open_tab(username, password, locale)``: a signed-in tab in its own browser (a
    device of its own: its own cookies)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def opened(username: str, password: str, locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, password)
        return tab

    yield opened
    for context in contexts:
        context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def visited_patient(live_server: LiveServer) -> str:
    """A patient with one visit: the clinic's rule "Last visit" (last_visit) has written the
    visit's date onto the patient."""
    patient = create(live_server, "patient", {"name": "History Rulename", "phone": unique_phone()})
    with live_server.api() as api:
        doctor = api.get(f"/api/records/{APP}/staff", params={"limit": 1}).json()["items"][0]
    create(
        live_server,
        "visit",
        {
            "patient": patient["id"],
            "doctor": doctor["id"],
            "department": "general",
            "visit_date": date.today().isoformat(),
            "visit_type": "checkup",
        },
    )
    with live_server.api() as api:
        history = api.get(f"/api/records/{APP}/patient/{patient['id']}/history").json()
    items = history["items"] if isinstance(history, dict) else history
    assert "rule:last_visit" in [entry["actor"] for entry in items]
    return str(patient["id"])


@pytest.mark.parametrize(
    ("locale", "rule_name", "person"),
    [("zh-CN", "规则：最近就诊", ADMIN), ("en-US", "Rule: Last visit", ADMIN)],
)
def test_the_history_names_a_rule_by_its_label(
    open_tab: Any,
    live_server: LiveServer,
    visited_patient: str,
    locale: str,
    rule_name: str,
    person: str,
) -> None:
    tab = open_tab(ADMIN, ADMIN_PASSWORD, locale)
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient/{visited_patient}")
    actors = tab.get_by_test_id("history-actor")
    by_rule = actors.and_(tab.locator("[data-actor='rule:last_visit']"))
    assert by_rule.inner_text() == rule_name
    assert person in actors.all_inner_texts()  # a person keeps their user name
    assert "rule:" not in tab.locator(".history").inner_text()
    # the line under the title says who changed it last the same way
    assert rule_name in tab.locator("p.meta").inner_text()


def test_a_language_change_reaches_the_other_devices(
    open_tab: Any, live_server: LiveServer
) -> None:
    user = make_user(live_server, "lang_two_devices", ["doctor"])
    phone = open_tab(user, PASSWORD, "en-US")
    desk = open_tab(user, PASSWORD, "en-US")
    home = f"{live_server.url}/apps/{APP}"
    desk.goto(home)
    assert desk.evaluate("document.documentElement.lang") == "en"
    # chosen on the phone...
    phone.goto(home)
    phone.get_by_test_id("language").select_option("zh-CN")
    phone.wait_for_function("document.documentElement.lang === 'zh-CN'")
    # ...the desk's next page is in it, with no new sign-in (its cookie still says nothing)
    desk.goto(home)
    assert desk.evaluate("document.documentElement.lang") == "zh-CN"
    assert desk.locator("h1").inner_text() == "诊所客户管理"
    assert desk.get_by_test_id("language").input_value() == "zh-CN"
    # and back: English everywhere at the next page
    desk.get_by_test_id("language").select_option("en")
    desk.wait_for_function("document.documentElement.lang === 'en'")
    phone.goto(home)
    assert phone.evaluate("document.documentElement.lang") == "en"
    assert phone.locator("h1").inner_text() == "Clinic CRM"
    # a link that asks for a language still gets it
    phone.goto(f"{home}?lang=zh-CN")
    assert phone.evaluate("document.documentElement.lang") == "zh-CN"
