"""The task inbox in a real browser: the demo nurse works a day-3 follow-up call from the
header badge to a completed step (a field error on the way, in her language), the flow and
the follow-up record move on (checked through the API); the front desk sees none of it; the
inbox on a 390 px phone.

The call is a fresh one: the test records a visit three days back for the nurse's
department, and the flow's day-3 timer (already due) opens the call at the worker's next
tick. The demo's own calls depend on the hour (a call left waiting moves to the head nurse
after four working hours), so the test does not take one of them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models.auth import User
from formloom.platform.models.automation import Notification
from formloom.platform.records.ids import new_id
from tests.ui.conftest import LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP

PASSWORD = "inbox-tests-pw"
NURSE, DESK, HEAD_NURSE = "demo_nurse", "demo_front_desk", "demo_head_nurse"


@pytest.fixture(scope="module")
def demo_people(live_server: LiveServer) -> dict[str, Any]:
    """The demo nurse and front desk with a known password, and the nurse's attributes."""
    for name in (NURSE, DESK, HEAD_NURSE):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr
    with live_server.api(NURSE, PASSWORD) as api:
        me = api.get("/api/auth/me").json()
    return {"attributes": me["attributes"]}


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US", width: int = 1280) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def _new_day3_call(server: LiveServer, attributes: dict[str, Any]) -> tuple[str, str]:
    """A visit of three days ago with a day-3 plan in the nurse's department and branch;
    returns (visit id, the call's task id) once the call is open."""
    branch, department = attributes["branch"], attributes["department"]
    where = json.dumps({"==": [{"var": "branch"}, branch]})
    with server.api() as api:
        patient = api.get(f"/api/records/{APP}/patient", params={"limit": 1, "filter": where})
        doctor = api.get(f"/api/records/{APP}/staff", params={"limit": 1})
        visit_date = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
        made = api.post(
            f"/api/records/{APP}/visit",
            json={
                "data": {
                    "patient": patient.json()["items"][0]["id"],
                    "doctor": doctor.json()["items"][0]["id"],
                    "department": department,
                    "branch": branch,
                    "visit_date": visit_date,
                    "visit_type": "treatment",
                    "complaint": "Inbox test: stitches",
                    "follow_up_needed": True,
                    "follow_up_plan": "short",
                }
            },
        )
        assert made.status_code == 201, made.text
        visit = made.json()["id"]
        deadline = time.monotonic() + 45
        while True:
            found = api.get(
                "/api/tasks", params={"scope": "everyone", "record_id": visit, "app": APP}
            ).json()["items"]
            calls = [task for task in found if task["node"] == "call_day3"]
            if calls:
                return visit, calls[0]["id"]
            assert time.monotonic() < deadline, "the day-3 call did not open"
            time.sleep(0.5)


WORDS = {
    "en-US": {"claimed": "Claimed — open", "max": "Must be at most 10.", "done": "Done:"},
    "zh-CN": {"claimed": "已认领 — 打开", "max": "不能大于 10。", "done": "已完成："},
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_nurse_works_a_day3_call_from_the_badge_to_the_next_step(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any], locale: str
) -> None:
    words = WORDS[locale]
    visit, task_id = _new_day3_call(live_server, demo_people["attributes"])
    nurse = tab_as(NURSE, locale)
    # the badge counts what the API counts: assigned + claimable, overdue apart
    badge = nurse.get_by_test_id("inbox-badge")
    nurse.wait_for_function(
        "document.querySelector('[data-testid=inbox-badge]').dataset.open !== undefined"
    )
    with live_server.api(NURSE, PASSWORD) as api:
        counts = api.get("/api/tasks", params={"limit": 1}).json()["counts"]
    assert badge.get_attribute("data-open") == str(counts["assigned"] + counts["claimable"])
    assert badge.get_attribute("data-overdue") == str(counts["overdue"])
    assert counts["claimable"] >= 1

    badge.click()
    nurse.wait_for_url(f"{live_server.url}/tasks")
    nurse.get_by_test_id("tab-claimable").click()
    # the tab is a link: wait for its page, not the one being left
    nurse.wait_for_url("**/tasks?tab=claimable**")
    assert nurse.get_by_test_id("task-list").get_attribute("data-tab") == "claimable"
    row = nurse.locator(f"[data-testid=task-row][data-id='{task_id}']")
    row.wait_for(state="visible", timeout=10_000)
    row.get_by_test_id("claim").click()
    opened = row.get_by_test_id("open-claimed")
    assert opened.inner_text() == words["claimed"]
    with live_server.api(NURSE, PASSWORD) as api:
        assert api.get(f"/api/tasks/{task_id}").json()["assignee"] == NURSE
    opened.click()
    nurse.wait_for_url(f"{live_server.url}/tasks/{task_id}")

    # only the step's fields are inputs; the rest of the visit is read-only
    form = nurse.get_by_test_id("task-form")
    pain = form.locator("input[name=followup_pain]")
    assert pain.is_editable()
    assert not form.locator("[name=complaint]").is_editable()
    # an outcome that needs a comment asks for it first
    nurse.get_by_test_id("outcome-unreachable").click()
    assert nurse.get_by_test_id("task-comment-error").is_visible()
    # a value the field refuses: the server's 422 at the field, in her language
    pain.fill("11")
    nurse.get_by_test_id("outcome-reached").click()
    error = form.locator("[data-field=followup_pain] .fl-error")
    error.wait_for()
    assert error.inner_text() == words["max"]
    assert pain.get_attribute("aria-invalid") == "true"
    with live_server.api(NURSE, PASSWORD) as api:
        assert api.get(f"/api/tasks/{task_id}").json()["status"] == "open"
    # fixed: done, back in the inbox with a confirmation, and the task has left it
    pain.fill("3")
    form.locator("textarea[name=followup_note]").fill("Healing well, no fever.")
    nurse.get_by_test_id("outcome-reached").click()
    nurse.wait_for_url(f"{live_server.url}/tasks?completed={task_id}")
    assert words["done"] in nurse.get_by_test_id("completed-notice").inner_text()
    assert nurse.locator(f"[data-testid=task-row][data-id='{task_id}']").count() == 0
    nurse.get_by_test_id("tab-claimable").click()
    nurse.wait_for_url("**/tasks?tab=claimable**")
    nurse.get_by_test_id("task-counts").wait_for()
    assert nurse.locator(f"[data-testid=task-row][data-id='{task_id}']").count() == 0

    # the flow moved on and wrote the follow-up record (through the API)
    with live_server.api() as api:
        task = api.get(f"/api/tasks/{task_id}").json()
        assert task["status"] == "done" and task["outcome"] == "reached"
        assert task["completed_by"] == NURSE
        instance = api.get(f"/api/flow-instances/{task['instance_id']}").json()
        assert "call_day3" not in instance["waiting_at"]
        kinds = [entry["kind"] for entry in instance["timeline"]]
        assert "task_completed" in kinds
        where = json.dumps({"==": [{"var": "visit"}, visit]})
        (follow_up,) = api.get(f"/api/records/{APP}/follow_up", params={"filter": where}).json()[
            "items"
        ]
        assert follow_up["data"]["checkpoint"] == "day3"
        assert follow_up["data"]["status"] == "done"
        assert follow_up["data"]["pain"] == 3
        assert follow_up["data"]["notes"] == "Healing well, no fever."
        record = api.get(f"/api/records/{APP}/visit/{visit}").json()["data"]
        assert record["followup_pain"] == 3

    # the task page now reads as done, with the timeline in words
    nurse.goto(f"{live_server.url}/tasks/{task_id}")
    assert nurse.get_by_test_id("task-state").get_attribute("data-status") == "done"
    assert nurse.get_by_test_id("timeline-entry").count() >= 3


def test_the_front_desk_sees_no_nurse_tasks(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any]
) -> None:
    _, task_id = _new_day3_call(live_server, demo_people["attributes"])
    desk = tab_as(DESK)
    desk.goto(f"{live_server.url}/tasks?tab=claimable")
    assert desk.locator(f"[data-testid=task-row][data-id='{task_id}']").count() == 0
    titles = desk.locator("[data-testid=task-row] .task-title").all_inner_texts()
    assert not [title for title in titles if title.startswith("Day-3 call")]
    desk.goto(f"{live_server.url}/tasks/{task_id}")
    assert desk.locator(".problem").get_attribute("data-status") == "404"
    with live_server.api(DESK, PASSWORD) as api:
        assert api.get(f"/api/tasks/{task_id}").status_code == 404


def test_the_inbox_on_a_phone(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any]
) -> None:
    _new_day3_call(live_server, demo_people["attributes"])
    phone = tab_as(NURSE, "en-US", width=390)
    phone.goto(f"{live_server.url}/tasks?tab=claimable")
    rows = phone.get_by_test_id("task-row")
    assert rows.count() >= 1
    # rows are cards, one column, and nothing is wider than the screen
    assert rows.first.evaluate("r => getComputedStyle(r).gridTemplateAreas") != "none"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = rows.first.bounding_box()
    assert box is not None and box["width"] <= 390
    # a tap on the card (not on its button) opens the task
    href = rows.first.get_attribute("data-href")
    rows.first.locator(".task-app").click()
    phone.wait_for_url(f"{live_server.url}{href}")
    phone.go_back()
    # keyboard: Tab reaches a row and Enter opens its task
    rows.first.focus()
    href = rows.first.get_attribute("data-href")
    phone.keyboard.press("Enter")
    phone.wait_for_url(f"{live_server.url}{href}")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def _notify(server: LiveServer, username: str, record: tuple[str, str] | None) -> str:
    """An in-app notification for ``username`` (as the in_app channel stores one)."""

    async def add() -> str:
        db = Database(server.env["FORMLOOM_DATABASE_URL"])
        try:
            async with db.transaction() as session:
                user_id = await session.scalar(select(User.id).where(User.username == username))
                note_id = new_id()
                session.add(
                    Notification(
                        id=note_id, user_id=user_id, app=APP, rule="inbox_test",
                        subject="Inbox test", body=f"Note {note_id[-6:]}",
                        form=record[0] if record else None,
                        record_id=record[1] if record else None,
                        source_key=f"inbox-test:{note_id}", created_at=datetime.now(UTC),
                    )
                )  # fmt: skip
            return note_id
        finally:
            await db.dispose()

    # Playwright's sync API runs an event loop in this thread: write from another one
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(add())).result()


def test_notifications_are_marked_read_one_and_all(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any]
) -> None:
    visit, _ = _new_day3_call(live_server, demo_people["attributes"])
    first = _notify(live_server, NURSE, ("visit", visit))
    second = _notify(live_server, NURSE, None)
    nurse = tab_as(NURSE)
    nurse.goto(f"{live_server.url}/tasks")

    def unread_by_api() -> int:
        with live_server.api(NURSE, PASSWORD) as api:
            found = api.get("/api/notifications", params={"unread": "true", "limit": 500})
            return len(found.json()["items"])

    count = nurse.get_by_test_id("unread-count")
    assert count.get_attribute("data-count") == str(unread_by_api())
    before = int(count.get_attribute("data-count") or 0)
    note = nurse.locator(f"[data-testid=note][data-id='{first}']")
    # it links to the record it is about
    assert note.locator("a").get_attribute("href") == f"/apps/{APP}/forms/visit/{visit}"
    note.get_by_test_id("mark-read").click()
    nurse.wait_for_function(
        f"document.querySelector(\"[data-id='{first}']\").dataset.unread === 'false'"
    )
    assert count.get_attribute("data-count") == str(before - 1) == str(unread_by_api())
    assert (
        nurse.locator(f"[data-testid=note][data-id='{second}']").get_attribute("data-unread")
        == "true"
    )
    nurse.get_by_test_id("read-all").click()
    nurse.wait_for_function(
        "document.querySelector('[data-testid=unread-count]').dataset.count === '0'"
    )
    assert unread_by_api() == 0
    assert nurse.get_by_test_id("read-all").is_hidden()
    nurse.reload()
    assert nurse.locator("[data-testid=note][data-unread=true]").count() == 0


def test_a_claimed_call_is_handed_over_to_the_head_nurse(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any]
) -> None:
    _, task_id = _new_day3_call(live_server, demo_people["attributes"])
    nurse = tab_as(NURSE, "zh-CN")
    nurse.goto(f"{live_server.url}/tasks/{task_id}")
    # not hers yet: the step's fields are read-only until she claims it
    assert not nurse.locator("input[name=followup_pain]").is_editable()
    nurse.get_by_test_id("task-claim").click()
    nurse.locator("input[name=followup_pain]").wait_for()
    nurse.wait_for_function("!document.querySelector('[data-testid=task-claim]')")
    assert nurse.locator("input[name=followup_pain]").is_editable()
    nurse.get_by_test_id("delegate").locator("summary").click()
    nurse.get_by_test_id("delegate-user").select_option("demo_head_nurse")
    nurse.get_by_test_id("delegate-form").locator("button[type=submit]").click()
    nurse.wait_for_url(f"{live_server.url}/tasks")
    assert nurse.locator(f"[data-testid=task-row][data-id='{task_id}']").count() == 0
    with live_server.api() as api:
        task = api.get(f"/api/tasks/{task_id}").json()
    assert task["assignee"] == "demo_head_nurse" and task["status"] == "open"
    # no longer hers to open; the task's timeline says who handed it to whom
    nurse.goto(f"{live_server.url}/tasks/{task_id}")
    assert nurse.locator(".problem").get_attribute("data-status") == "404"
    with live_server.api() as api:
        page = api.get(f"/tasks/{task_id}", headers={"accept-language": "en"}).text
    assert "demo_nurse handed “Day-3 call” to demo_head_nurse" in page


def test_a_call_the_head_nurse_claimed_meanwhile_is_refused_in_words(
    tab_as: Any, live_server: LiveServer, demo_people: dict[str, Any]
) -> None:
    _, task_id = _new_day3_call(live_server, demo_people["attributes"])
    nurse = tab_as(NURSE, "zh-CN")
    nurse.goto(f"{live_server.url}/tasks?tab=claimable")
    row = nurse.locator(f"[data-testid=task-row][data-id='{task_id}']")
    with live_server.api(HEAD_NURSE, PASSWORD) as api:
        assert api.post(f"/api/tasks/{task_id}/claim").status_code == 200
    row.get_by_test_id("claim").click()
    error = nurse.get_by_test_id("inbox-error")
    error.wait_for()
    assert error.inner_text() == "您不能处理此任务。"
    assert row.get_by_test_id("claim").is_enabled()
