"""The access screen in Chromium (issue 17, item 2), in English and Chinese.

A form the nurse cannot use ("Your roles … do not allow you to read …"): the head office (a
designer, not a platform admin) opens Access from the designer's home, finds a proposed
starting grant, ticks create for nurses, hides the internal note from them, limits them to
their branch with the condition builder ("Branch is the user's branch") and saves. In a
second browser the Xuhui nurse opens the list: Xuhui's feedback only, without the note.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in

APP = "clinic_crm"
PASSWORD = "access-screen-tests-pw"
HEAD_OFFICE, NURSE = "demo_head_office", "demo_nurse"


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> None:
    for name in (HEAD_OFFICE, NURSE):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer, people: None) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str) -> Any:
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


@pytest.fixture
def made_forms(live_server: LiveServer) -> Iterator[list[str]]:
    """The forms a test makes lose their grants afterwards, so that the roles of later
    tests on the same server see the clinic's forms only."""
    forms: list[str] = []
    yield forms
    with live_server.api() as api:
        for form in forms:
            emptied = api.put(f"/api/apps/{APP}/forms/{form}/access", json=[])
            assert emptied.status_code == 200, emptied.text


def a_new_form(server: LiveServer, form: str) -> dict[str, str]:
    """A feedback form no grant names, with feedback from both branches (as the admin)."""
    with server.api() as api:
        branches = api.get(f"/api/records/{APP}/branch", params={"limit": 10}).json()["items"]
        ids = {b["data"]["name"]: b["id"] for b in branches}
        made = api.put(
            f"/api/apps/{APP}/forms/{form}",
            json={
                "label": {"en": "Feedback", "zh-CN": "意见反馈"},
                "title_field": "subject",
                "fields": [
                    {"key": "subject", "type": "text", "label": {"en": "Subject",
                                                                "zh-CN": "主题"}},
                    {"key": "branch", "type": "relation", "target": "branch",
                     "label": {"en": "Branch", "zh-CN": "分院"}},
                    {"key": "internal_note", "type": "text",
                     "label": {"en": "Internal note", "zh-CN": "内部备注"}},
                ],
            },
        )  # fmt: skip
        assert made.status_code in (200, 201), made.text
        for subject, branch in (("XH one", "Xuhui"), ("XH two", "Xuhui"), ("PD one", "Pudong")):
            record = {"subject": subject, "branch": ids[branch], "internal_note": f"NOTE {subject}"}
            answer = api.post(f"/api/records/{APP}/{form}", json={"data": record})
            assert answer.status_code == 201, answer.text
    return ids


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_head_office_lets_nurses_use_a_new_form_in_their_branch(
    tab_as: Any, live_server: LiveServer, made_forms: list[str], locale: str
) -> None:
    form = "feedback_" + locale[:2]
    a_new_form(live_server, form)
    made_forms.append(form)
    chinese = locale == "zh-CN"

    nurse = tab_as(NURSE, locale)
    refused = nurse.goto(f"{live_server.url}/apps/{APP}/forms/{form}")
    assert refused is not None and refused.status == 403

    head = tab_as(HEAD_OFFICE, locale)
    head.goto(f"{live_server.url}/designer/{APP}")
    head.get_by_test_id(f"designer-access-{form}").click()
    head.wait_for_url(f"**/designer/{APP}/{form}/access")
    assert head.get_by_test_id("access-proposal").is_visible()
    assert head.get_by_test_id("access-dirty").is_visible()  # a proposal is not saved yet
    heading = head.locator("h1").inner_text()
    assert ("访问权限" if chinese else "Access") in heading
    # proposed: the designers everything, the roles that read other forms read
    assert head.get_by_test_id("access-head_office-delete").is_checked()
    assert head.get_by_test_id("access-nurse-read").is_checked()
    assert not head.get_by_test_id("access-nurse-create").is_checked()
    # the admin has everything through the app's "*" grant: ticked, greyed
    assert head.get_by_test_id("access-admin-read").is_disabled()

    head.get_by_test_id("access-nurse-create").check()
    # leaving with unsaved changes asks first; staying keeps them
    dialogs: list[str] = []

    def stay(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    head.once("dialog", stay)
    head.get_by_test_id("access-designer").click()
    for _ in range(100):
        if dialogs:
            break
        head.wait_for_timeout(100)
    assert dialogs == ["beforeunload"]
    assert head.url.endswith(f"/{form}/access")
    assert head.get_by_test_id("access-nurse-create").is_checked()
    head.get_by_test_id("access-nurse-more").click()
    head.get_by_test_id("access-nurse-hidden-internal_note").check()
    assert head.get_by_test_id("access-nurse-readonly-internal_note").is_disabled()
    head.get_by_test_id("access-nurse-add-condition").click()
    head.get_by_test_id("access-nurse-field-0").select_option("branch")
    head.get_by_test_id("access-nurse-op-0").select_option("==")
    # a condition without its value is not sent
    head.get_by_test_id("access-save").click()
    assert head.get_by_test_id("access-status").get_attribute("data-kind") == "error"
    assert head.get_by_test_id("access-nurse-errors").is_visible()
    source = head.get_by_test_id("access-nurse-source-0")
    assert ("用户所在分院" if chinese else "the user's branch") in source.inner_text()
    source.select_option("$user.branch")
    assert head.get_by_test_id("access-nurse-rows").inner_text() == (
        "部分记录" if chinese else "Only some records"
    )
    head.get_by_test_id("access-save").click()
    head.wait_for_function(
        "document.querySelector('[data-testid=access-status]').dataset.kind === 'ok'"
    )
    assert head.get_by_test_id("access-dirty").is_hidden()
    assert head.get_by_test_id("access-proposal").is_hidden()

    with live_server.api() as api:
        grants = api.get(f"/api/apps/{APP}/forms/{form}/access").json()["grants"]
    nurses = [g for g in grants if "nurse" in g["roles"]]
    assert nurses == [
        {
            "form": form,
            "roles": ["nurse"],
            "actions": ["create", "read"],
            "row_filter": {"==": [{"var": "branch"}, {"var": "$user.branch"}]},
            "hidden_fields": ["internal_note"],
        }
    ]
    head_office = next(g for g in grants if "head_office" in g["roles"])
    assert head_office["actions"] == ["create", "read", "update", "delete", "export"]

    # the nurse (Xuhui) now opens the list: Xuhui's feedback, no internal note
    nurse.goto(f"{live_server.url}/apps/{APP}/forms/{form}")
    table = nurse.get_by_test_id("records")
    text = table.inner_text()
    assert "XH one" in text and "XH two" in text
    assert "PD one" not in text
    assert "NOTE" not in nurse.content()
    assert ("内部备注" if chinese else "Internal note") not in text
    assert nurse.get_by_test_id("new-record").is_visible()  # she may create

    # someone saves the app meanwhile: the next save is refused and the page says to reload
    with live_server.api() as api:
        form_now = api.get(f"/api/apps/{APP}/forms/{form}").json()
        definition = form_now.get("form", form_now)
        changed = {**definition, "label": {"en": "Feedback!", "zh-CN": "意见反馈！"}}
        assert api.put(f"/api/apps/{APP}/forms/{form}", json=changed).status_code == 200
    head.get_by_test_id("access-manager-export").check()
    assert head.get_by_test_id("access-manager-read").is_checked()
    head.get_by_test_id("access-save").click()
    head.get_by_test_id("access-conflict").wait_for()
    assert head.get_by_test_id("access-dirty").is_visible()
    head.get_by_test_id("access-reload").click()
    head.wait_for_load_state()
    head.get_by_test_id("access-matrix").wait_for()
    assert head.get_by_test_id("access-proposal").is_hidden()
    assert not head.get_by_test_id("access-manager-export").is_checked()
    assert head.get_by_test_id("access-nurse-create").is_checked()
