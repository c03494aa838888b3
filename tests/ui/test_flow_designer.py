"""The flow designer in Chromium (issue 15's proof for flows): the clinic's complaint work
order rebuilt from an empty flow by the head office (a designer, not a platform admin) — with
the mouse in English, with the keyboard in Chinese — saves the very JSON the clinic ships
(modulo the flow's key and the order of lists the designer does not order); Simulate runs
the draft on the clinic's clock; problems are pinned to their step; a branch manager (no
design) gets a 403 page and 403 from the save API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ROOT, LiveServer, sign_in

APP = "clinic_crm"
PASSWORD = "flow-designer-tests-pw"
HEAD_OFFICE, MANAGER = "demo_head_office", "demo_manager"
SHIPPED = json.loads((ROOT / "builtin_apps" / APP / "app.json").read_text(encoding="utf-8"))
COMPLAINT = next(flow for flow in SHIPPED["flows"] if flow["key"] == "complaint")
NODES = {node["key"]: node for node in COMPLAINT["nodes"]}
SAME_BRANCH = {
    "or": [
        {"!": {"var": "record.branch"}},
        {"==": [{"var": "user.branch"}, {"var": "record.branch"}]},
    ]
}


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> Iterator[None]:
    for name in (HEAD_OFFICE, MANAGER):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr
    yield
    with live_server.api() as api:
        for key in ("complaint_mouse", "complaint_keys", "draft_flow"):
            api.delete(f"/api/apps/{APP}/flows/{key}")


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer, people: None) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1500, "height": 1000})
        context.set_default_timeout(45_000)  # a save re-plans the whole clinic app
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on("dialog", lambda dialog: dialog.accept())
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def normalised(flow: dict[str, Any]) -> dict[str, Any]:
    """The flow with its nodes keyed by key and its edges sorted: the designer appends what it
    inserts, the shipped file lists them in reading order."""
    body = {k: v for k, v in flow.items() if k not in ("key", "nodes", "edges")}
    body["nodes"] = {node["key"]: node for node in flow["nodes"]}
    body["edges"] = sorted(json.dumps(edge, sort_keys=True) for edge in flow["edges"])
    return body


def saved_flow(server: LiveServer, key: str) -> dict[str, Any]:
    with server.api() as api:
        answer = api.get(f"/api/apps/{APP}/flows/{key}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["flow"])


class Designer:
    """The designer's controls, by test id; every text is left (blurred) after typing, as a
    person moving on would, which is when the designer takes it as one undo step."""

    def __init__(self, tab: Any, keyboard: bool) -> None:
        self.tab = tab
        self.keyboard = keyboard

    def type(self, testid: str, text: str) -> None:
        box = self.tab.get_by_test_id(testid)
        if self.keyboard:
            box.focus()
            box.press("Control+A")
            box.press("Delete")
            self.tab.keyboard.insert_text(text)
        else:
            box.fill(text)
        box.blur()

    def texts(self, prefix: str, value: Any) -> None:
        for locale in ("en", "zh-CN"):
            self.type(f"{prefix}-{locale}", value[locale])

    def pick(self, testid: str, value: str) -> None:
        box = self.tab.get_by_test_id(testid)
        if self.keyboard:
            box.focus()
        box.select_option(value)

    def tick(self, testid: str) -> None:
        box = self.tab.get_by_test_id(testid)
        if self.keyboard:
            box.focus()
            self.tab.keyboard.press("Space")
        else:
            box.check()
        assert box.is_checked()

    def press(self, testid: str) -> None:
        button = self.tab.get_by_test_id(testid)
        if self.keyboard:
            button.focus()
            self.tab.keyboard.press("Enter")
        else:
            button.click()

    def select_step(self, key: str) -> None:
        step = self.tab.get_by_test_id(f"step-{key}")
        if self.keyboard:
            step.focus()
            self.tab.keyboard.press("Enter")
        else:
            step.click()
        self.tab.wait_for_selector(f"[data-testid=step-{key}][aria-selected=true]")

    def insert_after(self, key: str, kind: str, position: int) -> None:
        """Open the + under step ``key`` and pick ``kind`` (the ``position``-th menu entry)."""
        if self.keyboard:
            self.tab.get_by_test_id(f"add-after-{key}").focus()
            self.tab.keyboard.press("Enter")
            for _ in range(position):
                self.tab.keyboard.press("ArrowDown")
            focused = self.tab.evaluate("document.activeElement.dataset.testid")
            assert focused == f"insert-{kind}"
            self.tab.keyboard.press("Enter")
        else:
            self.tab.get_by_test_id(f"add-after-{key}").click()
            self.tab.get_by_test_id(f"insert-{kind}").click()

    def rename(self, key: str) -> None:
        self.tab.locator("[data-testid=flow-props] details.advanced > summary").click()
        self.type("step-key", key)
        self.tab.wait_for_selector(f"[data-testid=step-{key}]")

    def timing(self, prefix: str, timing: dict[str, Any]) -> None:
        ((kind, amount),) = timing.items()
        self.pick(f"{prefix}-kind", kind)
        self.type(f"{prefix}-amount", str(amount))

    def user_task(self, key: str) -> None:
        node = NODES[key]
        self.texts("step-label", node["label"])
        self.texts("step-title", node["title"])
        self.texts("step-description", node["description"])
        assignee = node["assignee"]
        if "field" in assignee:
            self.pick("assignee-kind", "field")
            self.pick("assignee-field", assignee["field"])
        else:
            self.pick("assignee-role", assignee["role"])
            assert assignee["where"] == SAME_BRANCH
            self.tick("assignee-same-branch")
        for field in node.get("edit", []):
            self.tick(f"field-{field}-edit")
        for field in node.get("required", []):
            self.tick(f"field-{field}-required")
        for index, outcome in enumerate(node["outcomes"]):
            self.press("outcome-add")
            self.type(f"outcome-{index}-key", outcome["key"])
            self.texts(f"outcome-{index}-label", outcome["label"])
            if outcome.get("comment") == "required":
                self.tick(f"outcome-{index}-comment")
        self.timing("step-due", node["due"])
        for index, escalation in enumerate(node.get("escalations", [])):
            self.press("escalation-add")
            if escalation["action"] != "remind":
                self.pick(f"escalation-{index}-action", escalation["action"])
            if "after" in escalation:
                self.timing(f"escalation-{index}-after", escalation["after"])
            if "to" in escalation:
                self.pick(f"escalation-{index}-to-role", escalation["to"]["role"])
                self.tick(f"escalation-{index}-to-same-branch")
        self.rename(key)

    def action(self, key: str) -> None:
        node = NODES[key]
        self.texts("step-label", node["label"])
        self.type("step-actions", json.dumps(node["actions"], ensure_ascii=False))
        self.rename(key)


def rebuild_complaint(designer: Designer, key: str) -> None:
    tab = designer.tab
    designer.type("flow-key", key)
    designer.texts("flow-label", COMPLAINT["label"])
    designer.texts("flow-description", COMPLAINT["description"])
    designer.pick("flow-form", "complaint")
    for role in COMPLAINT["start"]["roles"]:
        designer.tick(f"flow-start-{role}")

    designer.select_step("start")
    designer.texts("step-label", NODES["registered"]["label"])
    designer.rename("registered")
    designer.select_step("end")
    designer.texts("step-label", NODES["closed"]["label"])
    designer.rename("closed")

    previous = "registered"
    for key_ in ("classify", "start_handling", "handle", "to_review", "review", "tell_patient",
                 "satisfaction_call"):  # fmt: skip
        kind = NODES[key_]["type"]
        designer.insert_after(previous, kind, 0 if kind == "user_task" else 1)
        if kind == "user_task":
            designer.user_task(key_)
        else:
            designer.action(key_)
        previous = key_
    # the review sends a rejection back to handling
    designer.select_step("review")
    designer.pick("outcome-1-to", "start_handling")
    tab.wait_for_selector("[data-testid=goto-start_handling]")
    sent_back = next(e for e in COMPLAINT["edges"] if e.get("outcome") == "reject")
    designer.press("branch-review-1")
    designer.texts("branch-label", sent_back["label"])


def save(tab: Any) -> None:
    tab.get_by_test_id("flow-save").click()
    tab.get_by_test_id("flow-confirm").click()
    tab.wait_for_function(
        "document.querySelector('[data-testid=flow-status]').dataset.kind === 'ok'"
    )
    assert tab.get_by_test_id("flow-dirty").is_hidden()


@pytest.mark.parametrize(("locale", "keyboard"), [("en-US", False), ("zh-CN", True)])
def test_the_head_office_rebuilds_the_complaint_flow(
    tab_as: Any, live_server: LiveServer, locale: str, keyboard: bool
) -> None:
    key = "complaint_keys" if keyboard else "complaint_mouse"
    tab = tab_as(HEAD_OFFICE, locale=locale)
    tab.goto(f"{live_server.url}/designer/{APP}")
    tab.get_by_test_id("designer-flows").click()
    tab.get_by_test_id("flows-new").click()
    tab.wait_for_selector("[data-testid=flow-designer]")
    designer = Designer(tab, keyboard)
    rebuild_complaint(designer, key)

    # the chain reads as the work goes: registered ... closed, the rejection a go-to
    order = tab.eval_on_selector_all("[data-testid=flow-canvas] [data-node]",
                                     "nodes => nodes.map(n => n.dataset.node)")  # fmt: skip
    assert order == [node["key"] for node in COMPLAINT["nodes"]]

    tab.get_by_test_id("flow-simulate").click()
    timeline = tab.get_by_test_id("simulation-timeline")
    timeline.wait_for()
    opened = tab.eval_on_selector_all(
        "[data-testid=simulation-timeline] li[data-kind=task_opened]",
        "items => items.map(i => i.dataset.node)",
    )
    assert opened == ["classify", "handle", "review", "satisfaction_call"]
    # local times on the clinic's clock, not ISO stamps
    assert not re.search(r"\d{4}-\d\d-\d\dT\d", timeline.inner_text())
    assert re.search(r"\d\d:\d\d", timeline.inner_text())
    if not keyboard:  # again on a stored complaint picked by its title
        tab.get_by_test_id("relation-sim_record").click()
        tab.locator("#sim-record-list [role=option]").first.click()
        with tab.expect_request(lambda r: r.url.endswith("/simulate")) as sent:
            tab.get_by_test_id("simulate-again").click()
        assert "record_id" in json.loads(sent.value.post_data or "{}")
        tab.wait_for_function(
            "document.querySelectorAll('[data-testid=simulation-timeline] li').length > 0"
        )

    save(tab)
    saved, shipped = normalised(saved_flow(live_server, key)), normalised(COMPLAINT)
    for part in ("nodes", "edges"):
        assert saved[part] == shipped[part], part
    assert saved == shipped


def test_problems_are_pinned_to_their_step_and_undo_takes_changes_back(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/flows/new")
    designer = Designer(tab, keyboard=False)
    designer.type("flow-key", "draft_flow")
    designer.pick("flow-form", "complaint")
    designer.insert_after("start", "user_task", 0)
    designer.insert_after("start", "exclusive", 4)
    tab.get_by_test_id("flow-save").click()
    # the task without a title or people and the branch without a condition are marked
    problems = tab.locator("[data-testid=flow-canvas] .has-error")
    assert problems.count() == 2
    assert tab.get_by_test_id("flow-problems").is_visible()
    assert tab.locator("[data-testid=flow-props] .field-error").count() >= 1

    # a branch's condition from the condition builder; a new branch goes before the default
    tab.get_by_test_id("branch-choose-0").click()
    tab.get_by_test_id("condition-add").click()
    tab.get_by_test_id("condition-field-0").select_option("record.severity")
    tab.get_by_test_id("condition-value-0").select_option("high")
    steps_before = tab.locator("[data-testid=flow-canvas] [data-node]").count()
    tab.get_by_test_id("step-task").click()
    tab.get_by_test_id("step-remove").click()
    assert tab.locator("[data-testid=flow-canvas] [data-node]").count() == steps_before - 1
    tab.get_by_test_id("flow-undo").click()
    assert tab.locator("[data-testid=flow-canvas] [data-node]").count() == steps_before
    flow = json.loads(tab.get_by_test_id("flow-json").text_content() or "")
    branch = next(e for e in flow["edges"] if e["from"] == "choose" and "if" in e)
    assert branch["if"] == {"==": [{"var": "record.severity"}, "high"]}


def test_a_branch_manager_cannot_design_flows(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(MANAGER)
    answer = tab.goto(f"{live_server.url}/designer/{APP}/flows/complaint")
    assert answer is not None and answer.status == 403
    with httpx.Client(base_url=live_server.url) as client:
        token = client.post(
            "/api/auth/token", json={"username": MANAGER, "password": PASSWORD}
        ).json()["access_token"]
        body = {k: v for k, v in COMPLAINT.items() if k != "key"}
        refused = client.put(
            f"/api/apps/{APP}/flows/complaint",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 403, refused.text


def test_the_drawing_shows_where_running_instances_wait(
    tab_as: Any, live_server: LiveServer
) -> None:
    """Each step shows how many running instances wait there (as the instance API counts
    them); ?instance=<id> shows where one instance is and what it has done."""
    with live_server.api() as api:
        running: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"app": APP, "flow": "complaint", "status": "running", "limit": 200}
            page = api.get("/api/flow-instances", params={**params, "cursor": cursor} if cursor
                           else params).json()  # fmt: skip
            running += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert running, "the demo has complaint work orders under way"
    expected: dict[str, int] = {}
    for instance in running:
        for node in set(instance["waiting_at"]):
            expected[node] = expected.get(node, 0) + 1

    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/flows")
    assert tab.get_by_test_id("flow-running-complaint").inner_text() == str(len(running))
    tab.goto(f"{live_server.url}/designer/{APP}/flows/complaint")
    shown = {
        node: int(re.sub(r"\D", "", tab.get_by_test_id(f"waiting-{node}").inner_text()))
        for node in expected
    }
    assert shown == expected
    assert tab.locator("[data-testid^=waiting-]").count() == len(expected)

    one = running[0]
    tab.goto(f"{live_server.url}/designer/{APP}/flows/complaint?instance={one['id']}")
    for node in one["waiting_at"]:
        tab.get_by_test_id(f"here-{node}").wait_for()
    assert tab.locator("[data-testid^=here-]").count() == len(set(one["waiting_at"]))
