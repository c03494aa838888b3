"""The rule editor in Chromium (issue 15's proof for rules): the clinic's ``pain_alert`` rebuilt
from nothing with the mouse by the head office (a designer, not a platform admin) saves the
very JSON the clinic ships; the head office lowers the threshold from 7 to 6 and the next
visit with pain 6 alerts; the list switches a rule off and on; a branch manager (no design)
gets no edit links, a 403 page and 403 from the save API; the editor speaks Chinese."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ROOT, LiveServer, sign_in

APP = "clinic_crm"
PASSWORD = "rule-editor-tests-pw"
HEAD_OFFICE, MANAGER = "demo_head_office", "demo_manager"
SHIPPED = json.loads((ROOT / "builtin_apps" / APP / "app.json").read_text(encoding="utf-8"))
PAIN_ALERT = next(rule for rule in SHIPPED["rules"] if rule["key"] == "pain_alert")


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> Iterator[None]:
    """The head office and a branch manager with a known password; the shipped pain_alert
    is put back afterwards (other browser tests share the server)."""
    for name in (HEAD_OFFICE, MANAGER):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr
    yield
    with live_server.api() as api:
        body = {k: v for k, v in PAIN_ALERT.items() if k != "key"}
        restored = api.put(f"/api/apps/{APP}/rules/pain_alert", json=body)
        assert restored.status_code in (200, 201), restored.text


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer, people: None) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(45_000)  # a save re-plans the whole clinic app
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def saved_rule(server: LiveServer, key: str) -> dict[str, Any]:
    with server.api() as api:
        answer = api.get(f"/api/apps/{APP}/rules/{key}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["rule"])


def save_and_confirm(tab: Any) -> None:
    tab.get_by_test_id("rule-save").click()
    tab.get_by_test_id("rule-confirm").click()
    tab.wait_for_function(
        "document.querySelector('[data-testid=rule-status]').dataset.kind === 'ok'"
    )
    assert tab.get_by_test_id("rule-dirty").is_hidden()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_head_office_rebuilds_pain_alert_with_the_mouse(
    tab_as: Any, live_server: LiveServer, locale: str
) -> None:
    with live_server.api() as api:
        assert api.delete(f"/api/apps/{APP}/rules/pain_alert").status_code == 200
    tab = tab_as(HEAD_OFFICE, locale=locale)
    tab.goto(f"{live_server.url}/apps/{APP}")
    tab.get_by_test_id("design-rules").click()
    tab.get_by_test_id("rules-new").click()
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")

    tab.get_by_test_id("rule-key").fill("pain_alert")
    tab.get_by_test_id("rule-label-en").fill("Pain alert")
    tab.get_by_test_id("rule-label-zh-CN").fill("疼痛提醒")
    tab.get_by_test_id("trigger-form").select_option("visit")
    tab.get_by_test_id("trigger-event").select_option("created")
    tab.get_by_test_id("trigger-field-pain_score").check()

    tab.get_by_test_id("condition-add").click()
    tab.get_by_test_id("condition-field-0").select_option("record.pain_score")
    tab.get_by_test_id("condition-op-0").select_option(">=")
    tab.get_by_test_id("condition-value-0").fill("7")
    tab.get_by_test_id("condition-value-0").blur()

    tab.get_by_test_id("action-type").select_option("notify")
    tab.get_by_test_id("action-add").click()
    tab.get_by_test_id("action-0-channel").select_option("in_app")
    tab.get_by_test_id("action-0-recipient-0-kind").select_option("field")
    tab.get_by_test_id("action-0-recipient-0-field").select_option("doctor")

    tab.get_by_test_id("action-0-subject-add").click()
    subject = tab.get_by_test_id("action-0-subject-en")
    subject.fill("Pain score ")
    tab.get_by_test_id("action-0-subject-variable").select_option("record.pain_score")
    tab.keyboard.type("/10: ")
    tab.get_by_test_id("action-0-subject-variable").select_option("record.patient.name")
    assert subject.input_value() == PAIN_ALERT["then"][0]["subject"]["en"]
    zh = PAIN_ALERT["then"][0]["subject"]["zh-CN"]
    tab.get_by_test_id("action-0-subject-zh-CN").fill(zh)
    for locale in ("en", "zh-CN"):
        box = tab.get_by_test_id(f"action-0-template-{locale}")
        box.fill(PAIN_ALERT["then"][0]["template"][locale])
        box.blur()
    assert tab.get_by_test_id("rule-dirty").is_visible()

    tab.get_by_test_id("rule-save").click()
    assert "pain_alert" in tab.get_by_test_id("rule-plan-lines").inner_text()
    tab.get_by_test_id("rule-confirm").click()
    tab.wait_for_function(
        "document.querySelector('[data-testid=rule-status]').dataset.kind === 'ok'"
    )
    assert tab.url.endswith("/designer/clinic_crm/rules/pain_alert")
    assert saved_rule(live_server, "pain_alert") == PAIN_ALERT  # dicts: key order aside

    # try it on a real visit: told in words, nothing written
    tab.get_by_test_id("relation-try_record").click()
    tab.locator("#try-record-list [role=option]").first.click()
    tab.get_by_test_id("rule-try-run").click()
    result = tab.get_by_test_id("rule-try-result")
    result.locator("[data-testid=try-matched], [data-testid=try-unmatched]").wait_for()

    # undo and redo walk the edits back and forth; nothing is saved by them
    tab.get_by_test_id("rule-undo").click()
    assert tab.get_by_test_id("rule-dirty").is_visible()
    tab.get_by_test_id("rule-redo").click()
    assert tab.get_by_test_id("rule-dirty").is_hidden()
    assert saved_rule(live_server, "pain_alert") == PAIN_ALERT


def focused(tab: Any) -> str:
    return str(tab.evaluate("document.activeElement?.dataset?.testid || ''"))


def tab_to(tab: Any, testid: str, limit: int = 200) -> None:
    """Press Tab until the element with ``testid`` has the focus."""
    for _ in range(limit):
        if focused(tab) == testid:
            return
        tab.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {testid} (stuck at {focused(tab)!r})")


def choose(tab: Any, testid: str, value: str) -> None:
    """Pick an option of the focused select with the arrow keys (each step redraws the
    editor, which keeps the focus on the select)."""
    tab_to(tab, testid)
    options = tab.evaluate("[...document.activeElement.options].map((o) => o.value)")
    current = tab.evaluate("document.activeElement.value")
    steps = options.index(value) - options.index(current)
    for _ in range(abs(steps)):
        tab.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
    assert focused(tab) == testid
    assert tab.evaluate("document.activeElement.value") == value


def test_pain_alert_rebuilt_with_the_keyboard_only(tab_as: Any, live_server: LiveServer) -> None:
    with live_server.api() as api:
        assert api.delete(f"/api/apps/{APP}/rules/pain_alert").status_code == 200
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/rules/new")
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")
    keys = tab.keyboard
    notify = PAIN_ALERT["then"][0]

    tab_to(tab, "rule-key")
    keys.type("pain_alert")
    tab_to(tab, "rule-label-en")
    keys.type("Pain alert")
    tab_to(tab, "rule-label-zh-CN")
    keys.type("疼痛提醒")
    choose(tab, "trigger-form", "visit")
    tab_to(tab, "trigger-field-pain_score")
    keys.press("Space")
    tab_to(tab, "condition-add")
    keys.press("Enter")
    choose(tab, "condition-field-0", "record.pain_score")
    choose(tab, "condition-op-0", ">=")
    tab_to(tab, "condition-value-0")
    keys.type("7")
    keys.press("Tab")
    choose(tab, "action-type", "notify")
    keys.press("Tab")
    assert focused(tab) == "action-add"
    keys.press("Enter")
    choose(tab, "action-0-recipient-0-kind", "field")
    choose(tab, "action-0-recipient-0-field", "doctor")
    tab_to(tab, "action-0-subject-add")
    keys.press("Enter")
    for part, locale in (("subject", "en"), ("subject", "zh-CN"), ("template", "en"),
                         ("template", "zh-CN")):  # fmt: skip
        tab_to(tab, f"action-0-{part}-{locale}")
        keys.type(notify[part][locale])
    keys.press("Control+s")
    tab.get_by_test_id("rule-confirm").wait_for()
    assert focused(tab) == "rule-confirm"
    keys.press("Enter")
    tab.wait_for_function(
        "document.querySelector('[data-testid=rule-status]').dataset.kind === 'ok'"
    )
    assert saved_rule(live_server, "pain_alert") == PAIN_ALERT


def _visit_with_pain(server: LiveServer, pain: int) -> str:
    with server.api() as api:
        doctor = api.get(
            f"/api/records/{APP}/staff",
            params={"limit": 1, "filter": json.dumps({"==": [{"var": "username"}, "demo_doctor"]})},
        ).json()["items"][0]
        patient = api.get(f"/api/records/{APP}/patient", params={"limit": 1}).json()["items"][0]
        made = api.post(
            f"/api/records/{APP}/visit",
            json={
                "data": {
                    "patient": patient["id"],
                    "doctor": doctor["id"],
                    "department": doctor["data"]["department"],
                    "branch": doctor["data"]["branch"],
                    "visit_date": datetime.now(UTC).date().isoformat(),
                    "visit_type": "treatment",
                    "pain_score": pain,
                }
            },
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


def _alerted(server: LiveServer, visit: str) -> bool:
    with server.api() as api:
        log = api.get(f"/api/rules/{APP}/log", params={"rule": "pain_alert", "record_id": visit})
        assert log.status_code == 200, log.text
        return any(item["matched"] for item in log.json()["items"])


def test_the_head_office_lowers_the_threshold_and_the_next_visit_alerts(
    tab_as: Any, live_server: LiveServer
) -> None:
    before = _visit_with_pain(live_server, 6)
    assert not _alerted(live_server, before)

    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/rules")
    tab.get_by_test_id("rule-pain_alert").click()
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")
    value = tab.get_by_test_id("condition-value-0")
    assert value.input_value() == "7"
    value.fill("6")
    value.press("Tab")
    save_and_confirm(tab)
    assert saved_rule(live_server, "pain_alert")["if"] == {">=": [{"var": "record.pain_score"}, 6]}

    after = _visit_with_pain(live_server, 6)
    deadline = time.monotonic() + 10
    while not _alerted(live_server, after):
        assert time.monotonic() < deadline, "the visit with pain 6 did not alert"
        time.sleep(0.3)
    with live_server.api() as api:
        audit = api.get("/api/audit", params={"action": "app.rule_saved", "app": APP}).json()
    assert any(entry["actor"] == HEAD_OFFICE for entry in audit["items"])

    # the list: a rule is switched off and on again from its row
    tab.goto(f"{live_server.url}/designer/{APP}/rules")
    toggle = tab.get_by_test_id("rule-toggle-birthday_greeting")
    toggle.uncheck()
    tab.wait_for_function(
        "document.querySelector('[data-testid=rules-status]').textContent.includes('off')"
    )
    assert saved_rule(live_server, "birthday_greeting")["enabled"] is False
    toggle.check()
    tab.wait_for_function(
        "document.querySelector('[data-testid=rules-status]').textContent.includes(' on')"
    )
    assert "enabled" not in saved_rule(live_server, "birthday_greeting")


def test_a_save_the_server_refuses_is_shown_at_the_element(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/rules/pain_alert")
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")
    # JSON that does not parse stays on screen with its error until it does
    tab.get_by_test_id("condition-as-json").click()
    condition = tab.get_by_test_id("condition-json")
    condition.fill('{">=": [{"var": "record.pain_score"}, ')
    condition.blur()
    tab.locator("[data-error-for='/if']").wait_for()
    assert tab.get_by_test_id("condition-json").input_value().endswith(", ")
    tab.get_by_test_id("condition-json").fill('{">=": [{"var": "record.pain_score"}, 8]}')
    tab.get_by_test_id("condition-json").blur()
    assert tab.locator("[data-error-for='/if']").count() == 0
    tab.get_by_test_id("condition-builder").click()
    assert tab.get_by_test_id("condition-value-0").input_value() == "8"

    tab.get_by_test_id("action-0-template-en").fill("{{ record.pain_score ")
    tab.get_by_test_id("action-0-template-en").blur()
    tab.keyboard.press("Control+s")
    error = tab.locator("[data-error-for='/then/0/template/en']")
    error.wait_for()
    assert error.is_visible()
    assert tab.get_by_test_id("rule-problems").is_visible()
    # the unsaved-changes guard asks before leaving
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    tab.get_by_role("link", name="Rules", exact=False).first.click()
    time.sleep(0.5)
    assert dialogs == ["beforeunload"]


def test_a_rule_is_deleted_from_the_editor(tab_as: Any, live_server: LiveServer) -> None:
    body = {k: v for k, v in PAIN_ALERT.items() if k != "key"}
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/rules/pain_alert_copy", json=body)
        assert made.status_code == 201, made.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}")
    tab.get_by_test_id("designer-rules").click()
    tab.get_by_test_id("rule-pain_alert_copy").click()
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_test_id("rule-delete").click()
    tab.wait_for_url(f"{live_server.url}/designer/{APP}/rules")
    assert tab.get_by_test_id("rule-pain_alert_copy").count() == 0
    with live_server.api() as api:
        gone = api.get(f"/api/apps/{APP}/rules/pain_alert_copy")
    assert gone.status_code == 404


def test_a_branch_manager_cannot_design(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(MANAGER)
    tab.goto(f"{live_server.url}/apps/{APP}")
    tab.wait_for_selector("[data-testid=app-forms]")
    assert tab.get_by_test_id("design-rules").count() == 0
    assert tab.locator("[data-testid^=design-]").count() == 0
    page = tab.goto(f"{live_server.url}/designer/{APP}/rules")
    assert page is not None and page.status == 403
    page = tab.goto(f"{live_server.url}/designer/{APP}/rules/pain_alert")
    assert page is not None and page.status == 403
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        token = client.post(
            "/api/auth/token", json={"username": MANAGER, "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {k: v for k, v in PAIN_ALERT.items() if k != "key"}
        put = client.put(f"/api/apps/{APP}/rules/pain_alert", json=body, headers=headers)
        patch = client.patch(
            f"/api/apps/{APP}/rules/pain_alert", json={"enabled": False}, headers=headers
        )
    assert (put.status_code, patch.status_code) == (403, 403)


def test_the_editor_in_chinese(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(HEAD_OFFICE, locale="zh-CN")
    tab.goto(f"{live_server.url}/designer/{APP}/rules/pain_alert")
    tab.wait_for_selector("[data-testid=rule-editor][data-ready]")
    assert "在记录上试一试" in tab.get_by_test_id("rule-try").inner_text()
    assert "通知" in tab.get_by_test_id("action-0").inner_text()
    tab.goto(f"{live_server.url}/designer/{APP}/rules")
    assert "规则" in tab.locator("h1").inner_text()
