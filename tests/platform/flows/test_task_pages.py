"""The inbox's pages (``/tasks``, ``/tasks/rows``, ``/tasks/{id}``) show the caller exactly
what the inbox API shows them — someone else's task is a 404 page, an anonymous visitor is
sent to sign in — and ``POST /api/notifications/read-all`` marks only the caller's own
notifications. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.automation import Notification
from formloom.platform.records.ids import new_id
from formloom.platform.web.tasks import PAGE_ROWS
from tests import factories as f
from tests.conftest import TestUser, Users
from tests.platform.flows.test_task_work import APP, _create, _install, _start, _tasks, desk_app


@pytest.fixture
async def people(users: Users) -> dict[str, TestUser]:
    return {
        "clerk": await users.create("clerk", roles={APP: ["clerk"]}),
        "ann": await users.create("ann", roles={APP: ["clerk"]}),
        "bob": await users.create("bob", roles={APP: ["clerk"]}),
        "boss1": await users.create("boss1", roles={APP: ["boss"]}),
    }


def _page_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="task-data">(.*?)</script>', html, re.S)
    assert found, "the task page carries its data"
    data: dict[str, object] = json.loads(found.group(1))
    return data


async def test_task_pages_show_a_task_to_its_people_only(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    people: dict[str, TestUser],
    clock: FixedClock,
) -> None:
    await _install(client)
    ann = await _create(client, "staff", {"name": "Ann", "username": "ann"})
    await _start(client, people["clerk"], ann)
    (task,) = await _tasks(client, people["ann"])
    mine = people["ann"].headers

    inbox = await client.get("/tasks", headers=mine)
    assert inbox.status_code == 200
    assert f'data-id="{task["id"]}"' in inbox.text and "Approve Laptop" in inbox.text
    # due in two hours, on the clinic's clock: "today" (the fixed clock is mid-morning)
    assert "today " in inbox.text
    due_today = await client.get("/tasks", params={"due": "today"}, headers=mine)
    assert f'data-id="{task["id"]}"' in due_today.text
    overdue = await client.get("/tasks", params={"due": "overdue"}, headers=mine)
    assert f'data-id="{task["id"]}"' not in overdue.text
    assert 'data-testid="inbox-empty"' in overdue.text
    clock.advance(hours=3)
    overdue = await client.get("/tasks", params={"due": "overdue"}, headers=mine)
    assert f'data-id="{task["id"]}"' in overdue.text
    assert "overdue since" in overdue.text
    clock.advance(hours=-3)
    rows = await client.get("/tasks/rows", params={"tab": "assigned"}, headers=mine)
    assert rows.status_code == 200 and f'data-id="{task["id"]}"' in rows.text
    assert "X-Next-Cursor" not in rows.headers

    page = await client.get(f"/tasks/{task['id']}", headers=mine)
    assert page.status_code == 200
    data = _page_data(page.text)
    assert data["task"]["id"] == task["id"]  # type: ignore[index]
    # the step edits nothing: every field is read-only
    assert set(data["access"].values()) == {"read"}  # type: ignore[attr-defined]
    assert 'data-testid="outcome-yes"' in page.text and 'data-testid="outcome-no"' in page.text
    assert "Task “approve” opened" in page.text  # the timeline, in words
    # "hand over" offers the app's other people, not herself
    assert '<option value="bob">' in page.text and '<option value="boss1">' in page.text
    assert '<option value="ann">' not in page.text

    # someone else's task: the API's 404, as a page; nothing of it shows
    for other in ("bob", "boss1"):
        denied = await client.get(f"/tasks/{task['id']}", headers=people[other].headers)
        assert denied.status_code == 404
        assert "Approve Laptop" not in denied.text
        theirs = await client.get("/tasks", headers=people[other].headers)
        assert theirs.status_code == 200 and task["id"] not in theirs.text
    missing = await client.get("/tasks/" + "0" * 32, headers=mine)
    assert missing.status_code == 404
    nonsense = await client.get("/tasks/not-a-task", headers=mine)
    assert nonsense.status_code == 404

    # no one signed in: sign in first, and come back
    for path in ("/tasks", f"/tasks/{task['id']}", "/tasks/rows"):
        answer = await anon_client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/signin?next=")

    # done: the inbox confirms it and the Done tab has it
    done = await client.post(
        f"/api/tasks/{task['id']}/complete", json={"outcome": "yes"}, headers=mine
    )
    assert done.status_code == 200, done.text
    confirmed = await client.get("/tasks", params={"completed": task["id"]}, headers=mine)
    assert 'data-testid="completed-notice"' in confirmed.text
    assert f'data-id="{task["id"]}"' not in confirmed.text
    tab = await client.get("/tasks", params={"tab": "done"}, headers=mine)
    assert f'data-id="{task["id"]}"' in tab.text
    # another's completed task is no confirmation for bob
    other = await client.get(
        "/tasks", params={"completed": task["id"]}, headers=people["bob"].headers
    )
    assert 'data-testid="completed-notice"' not in other.text


async def test_read_all_marks_only_the_callers_notifications(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    people: dict[str, TestUser],
    db: Database,
    clock: FixedClock,
) -> None:
    now = clock.now()
    async with db.transaction() as session:
        for n, who in enumerate(("ann", "ann", "bob")):
            session.add(
                Notification(
                    id=new_id(), user_id=people[who].id, app="desk", rule=None, subject="Hello",
                    body=f"note {n}", form=None, record_id=None, source_key=f"test:{n}",
                    created_at=now - timedelta(minutes=n),
                )
            )  # fmt: skip
    ann, bob = people["ann"].headers, people["bob"].headers
    page = await client.get("/tasks", headers=ann)
    assert re.search(r'data-testid="unread-count" data-count="2"', page.text)

    marked = await client.post("/api/notifications/read-all", headers=ann)
    assert marked.status_code == 200 and marked.json() == {"marked": 2}
    unread = await client.get("/api/notifications", params={"unread": "true"}, headers=ann)
    assert unread.json()["items"] == []
    again = await client.post("/api/notifications/read-all", headers=ann)
    assert again.json() == {"marked": 0}
    theirs = await client.get("/api/notifications", params={"unread": "true"}, headers=bob)
    assert [n["body"] for n in theirs.json()["items"]] == ["note 2"]
    page = await client.get("/tasks", headers=ann)
    assert re.search(r'data-testid="unread-count" data-count="0"', page.text)

    nobody = await anon_client.post("/api/notifications/read-all")
    assert nobody.status_code == 401


async def test_the_inbox_pages_by_due_time_within_a_due_window(
    client: httpx.AsyncClient, people: dict[str, TestUser], clock: FixedClock, users: Users
) -> None:
    await _install(client)
    ann = await _create(client, "staff", {"name": "Ann", "username": "ann"})
    for _ in range(PAGE_ROWS + 2):
        await _start(client, people["clerk"], ann)
    expected = [t["id"] for t in await _tasks(client, people["ann"], limit=100)]
    assert len(expected) == PAGE_ROWS + 2
    mine = people["ann"].headers
    for due in ("", "today", "week"):
        first = await client.get("/tasks", params={"due": due}, headers=mine)
        shown = re.findall(r'data-testid="task-row" data-id="(\w+)"', first.text)
        assert len(shown) == PAGE_ROWS
        more = re.search(r'data-testid="load-more" data-more="([^"]+)"', first.text)
        assert more, "a full page offers the next one"
        rest = await client.get(more.group(1).replace("&amp;", "&"), headers=mine)
        assert rest.status_code == 200 and "X-Next-Cursor" not in rest.headers
        shown += re.findall(r'data-testid="task-row" data-id="(\w+)"', rest.text)
        assert shown == expected  # soonest due first, every task once
    # the next morning (a new sign-in: tokens last 12 hours), none of them is due "today"
    # any more, and all are a day late
    clock.advance(hours=22)
    mine = {"Authorization": f"Bearer {await users.token('ann')}"}
    today = await client.get("/tasks", params={"due": "today"}, headers=mine)
    assert 'data-testid="task-row"' not in today.text
    assert "No tasks match these filters." in today.text
    late = await client.get("/tasks", params={"due": "overdue"}, headers=mine)
    assert "overdue 1 day" in late.text


def branched_desk() -> dict[str, Any]:
    """The desk app with branches: a request is on its branch's clock."""
    app = desk_app()
    app["forms"].append(
        f.form("branch", f.field("name", required=True), f.field("timezone"), title_field="name")
    )
    request = next(form for form in app["forms"] if form["key"] == "request")
    request["fields"].append(f.field("branch", "relation", target="branch"))
    app["zone"] = {"field": "branch.timezone"}
    return app


async def test_a_tasks_times_are_on_its_records_clock(
    client: httpx.AsyncClient, people: dict[str, TestUser]
) -> None:
    assert (await client.post("/api/apps/import", json=branched_desk())).status_code == 201
    ann = await _create(client, "staff", {"name": "Ann", "username": "ann"})
    kashgar = await _create(client, "branch", {"name": "Kashgar", "timezone": "Asia/Urumqi"})
    far = await _create(client, "request", {"subject": "Far", "owner": ann, "branch": kashgar})
    near = await _create(client, "request", {"subject": "Near", "owner": ann})
    for record in (far, near):
        started = await client.post(
            f"/api/flows/{APP}/approval/start",
            json={"record_id": record},
            headers=people["clerk"].headers,
        )
        assert started.status_code == 201, started.text
    tasks = {t["record_id"]: t for t in await _tasks(client, people["ann"])}
    mine = people["ann"].headers
    # due two hours after 02:30 UTC: 04:30 on the deployment's clock (UTC), 10:30 in Kashgar
    inbox = (await client.get("/tasks", headers=mine)).text
    far_row = inbox[inbox.index(f'data-id="{tasks[far]["id"]}"') :]
    far_row = far_row[: far_row.index("</li>")]
    assert "today 10:30 (Asia/Urumqi)" in far_row
    near_row = inbox[inbox.index(f'data-id="{tasks[near]["id"]}"') :]
    near_row = near_row[: near_row.index("</li>")]
    assert "today 04:30<" in near_row and "Asia/Urumqi" not in near_row
    page = (await client.get(f"/tasks/{tasks[far]['id']}", headers=mine)).text
    assert "today 10:30 (Asia/Urumqi)" in page and "Times in Asia/Urumqi" in page
