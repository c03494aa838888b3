"""Instance states: the versioned JSON form round-trips, a stored v1 row still loads and
runs, formats this version cannot read are refused, and a state saved mid-flow and loaded
again advances exactly like the one never saved."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from formloom.engines.flows.engine import (
    Event,
    MessageSent,
    SubflowEnded,
    TaskDone,
    TimerFired,
    advance,
)
from formloom.engines.flows.state import (
    STATE_FORMAT,
    Candidates,
    InstanceState,
    MultiState,
    StateFormatError,
    StepCompleted,
    TaskOpened,
    TaskRef,
    Token,
    state_from_dict,
)

from .factory import (
    NOW,
    OFFICE,
    SHANGHAI,
    Run,
    chain,
    edge,
    end,
    flow,
    of,
    outcomes,
    parallel,
    start,
    subflow,
    summary,
    task,
    timer,
    var,
    wait,
)


def stored(state: InstanceState) -> Any:
    """The state as a JSON column holds it."""
    return json.loads(json.dumps(state.to_dict()))


def spec() -> Any:
    """A review by every doctor (a veto rejects), a cooling-off timer and an audit subflow
    in parallel, then a closing task per tag of which one is enough."""
    return flow(
        [
            start(),
            parallel("split"),
            task(
                "review",
                mode="all",
                assignee={"role": "doctor"},
                due={"after": "P1D"},
                escalations=[{"action": "remind"}],
                outcomes=outcomes("ok", "no", no={"veto": True}),
            ),
            timer("cool", after="PT2H"),
            subflow("check", "audit"),
            parallel("join"),
            task("close", multi={"over": var("record.tags"), "complete": 1, "cancel_rest": False}),
            end(),
            end("rejected"),
        ],
        [
            edge("start", "split"),  # 0
            edge("split", "review"),  # 1
            edge("split", "cool"),  # 2
            edge("split", "check"),  # 3
            edge("review", "join", outcome="ok"),  # 4
            edge("review", "rejected", outcome="no"),  # 5
            edge("cool", "join"),  # 6
            edge("check", "join"),  # 7
            *chain("join", "close", "end"),  # 8, 9
        ],
    )


EVERY_KIND = InstanceState(
    id="c-1",
    flow="f",
    vars={"dept": "cardio", "n": [1, {"x": None}]},
    steps={"cool": {"outcome": "fired"}, "review": {"outcome": "ok", "outcomes": ["ok"]}},
    tokens=[
        Token(
            id="c-1.1",
            node="review",
            tasks={
                "c-1.4": TaskRef(
                    due=datetime(2026, 11, 24, 1, 30, tzinfo=UTC),
                    escalation=1,
                    item={"tag": "x"},
                    candidates=Candidates(roles=("doctor",), users=("eve", "dan")),
                ),
                "c-1.6": TaskRef(),
            },
            timers={"c-1.5": "escalate:c-1.4", "c-1.7": "remind:0:c-1.4"},
            multi=MultiState(total=3, needed=2, done=1, outcomes=["ok"]),
        ),
        Token(id="c-1.8", node="check", children=["c-1.9", "c-1.11"]),
        Token(id="c-1.10", node="join", arrived={6: 1, -1: 2}),
        Token(id="c-1.12", node="cool", timers={"c-1.13": "timer"}),
    ],
    mailbox=[{"name": "paid", "data": {"amount": 3}, "at": "2026-11-23T01:30:00Z"}],
    strays={"c-1.14": "close"},
    starter="sam",
    last_actor="dan",
    seq=14,
)


def test_every_kind_of_token_content_round_trips() -> None:
    data = stored(EVERY_KIND)
    assert data["format"] == STATE_FORMAT == "formloom.flow-state/1"
    loaded = state_from_dict(data)
    assert loaded == EVERY_KIND
    assert stored(loaded) == data
    ref = loaded.tokens[0].tasks["c-1.4"]
    assert ref.due == datetime(2026, 11, 24, 1, 30, tzinfo=UTC) and ref.due.tzinfo is not None
    assert loaded.tokens[2].arrived == {6: 1, -1: 2}
    assert data["tokens"][2]["arrived"] == {"6": 1, "-1": 2}  # JSON object keys are text
    for status in ("completed", "terminated", "cancelled"):
        data["status"] = status
        assert state_from_dict(data).status == status


def test_states_of_a_real_run_round_trip_at_every_step() -> None:
    run = Run(spec(), {"tags": ["x", "y"]})
    seen = []
    run.start()
    seen.append(run.state)
    run.fire("cool")
    seen.append(run.state)
    dan, eve = run.open_tasks("review")
    run.complete("review", "ok", "dan", task=dan)
    seen.append(run.state)
    for state in seen:
        assert state_from_dict(stored(state)) == state


# A row as the engine of format 1 stored it (spec() mid-run: the timer fired, dan approved,
# eve has not; the audit subflow runs; a message nobody waited for; a stray task).
V1_ROW = """{
  "format": "formloom.flow-state/1",
  "id": "c-1",
  "flow": "f",
  "status": "running",
  "vars": {},
  "steps": {
    "cool": {"outcome": "fired"},
    "review": {"outcome": "ok", "actor": "dan", "comment": null,
               "at": "2026-11-23T03:30:00Z", "outcomes": ["ok"]}
  },
  "tokens": [
    {"id": "c-1.1", "node": "review",
     "tasks": {"c-1.4": {"due": "2026-11-24T01:30:00Z", "escalation": 0, "item": null,
                         "candidates": {"roles": [], "users": ["eve"]}}},
     "timers": {"c-1.5": "escalate:c-1.4"},
     "children": [], "arrived": {},
     "multi": {"total": 2, "needed": 2, "done": 1, "outcomes": ["ok"]}},
    {"id": "c-1.8", "node": "check", "tasks": {}, "timers": {}, "children": ["c-1.9"],
     "arrived": {}, "multi": null},
    {"id": "c-1.10", "node": "join", "tasks": {}, "timers": {}, "children": [],
     "arrived": {"6": 1}, "multi": null}
  ],
  "mailbox": [{"name": "paid", "data": null, "at": "2026-11-23T02:00:00Z"}],
  "strays": {},
  "starter": "sam",
  "last_actor": "dan",
  "seq": 10
}"""


def test_a_stored_v1_row_still_loads_and_runs() -> None:
    state = state_from_dict(json.loads(V1_ROW))
    assert [token.node for token in state.tokens] == ["review", "check", "join"]
    assert state.tokens[0].tasks["c-1.4"].candidates == Candidates(users=("eve",))
    assert state.tokens[0].multi == MultiState(total=2, needed=2, done=1, outcomes=["ok"])
    assert state.tokens[2].arrived == {6: 1}
    run = Run(spec(), {"tags": ["x", "y"]}, now=datetime(2026, 11, 23, 4, 0, tzinfo=UTC),
              state=state)  # fmt: skip
    effects = run.send(TaskDone("c-1.4", "ok", "eve"))
    assert summary(effects) == [
        "task_completed:review:ok",
        "timer_cancelled:review",
        "step_completed:review:ok",
        "node_entered:join",
    ]
    assert run.state.tokens[-1].arrived == {6: 1, 4: 1}  # waits for the audit
    effects = run.send(SubflowEnded("c-1.9", "completed"))
    assert [e.task for e in of(effects, TaskOpened)] == ["c-1.12", "c-1.13"]
    assert [e.item for e in of(effects, TaskOpened)] == ["x", "y"]
    assert run.state.steps["review"]["outcomes"] == ["ok", "ok"]
    assert [m["name"] for m in run.state.mailbox] == ["paid"]


def test_a_v1_row_with_only_the_required_keys_loads_with_defaults() -> None:
    state = state_from_dict(
        {
            "format": "formloom.flow-state/1",
            "id": "c-2",
            "flow": "f",
            "status": "running",
            "tokens": [{"id": "c-2.1", "node": "review", "tasks": {"c-2.2": {}}}],
        }
    )
    assert state.tokens[0].tasks["c-2.2"] == TaskRef()
    assert (state.vars, state.steps, state.mailbox, state.strays, state.seq) == ({}, {}, [], {}, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "formloom.flow-state/2", "id": "c", "flow": "f", "status": "running"},
         "newer"),
        ({"format": "formloom.flow-state/12", "id": "c", "flow": "f", "status": "running"},
         "newer"),
        ({"format": "formloom.flow-state", "id": "c", "flow": "f", "status": "running"},
         "not a flow state"),
        ({"format": "formloom.flow-state/0", "id": "c", "flow": "f", "status": "running"},
         "not a flow state"),
        ({"format": "formloom.flow-state/v1", "id": "c", "flow": "f", "status": "running"},
         "not a flow state"),
        ({"format": "spiff.workflow/1", "id": "c", "flow": "f", "status": "running"},
         "not a flow state"),
        ({"id": "c", "flow": "f", "status": "running"}, "not a flow state"),
        ([], "JSON object"),
        ("formloom.flow-state/1", "JSON object"),
    ],
)  # fmt: skip
def test_formats_this_version_cannot_read_are_refused(data: Any, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        state_from_dict(data)


def damaged(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = stored(EVERY_KIND)
    data.update(change)
    return data


def token_with(**change: Any) -> list[dict[str, Any]]:
    token = stored(EVERY_KIND)["tokens"][0]
    token.update(change)
    return [token]


@pytest.mark.parametrize(
    "data",
    [
        {"format": STATE_FORMAT, "flow": "f", "status": "running"},  # no id
        damaged(status="paused"),
        damaged(status=None),
        damaged(tokens=[{"node": "a"}]),
        damaged(tokens=["a"]),
        damaged(tokens=[7]),
        damaged(tokens={"a": 1}),
        damaged(tokens=token_with(tasks={"t": "x"})),
        damaged(tokens=token_with(tasks=["t"])),
        damaged(tokens=token_with(tasks={"t": {"due": "tomorrow"}})),
        damaged(tokens=token_with(tasks={"t": {"due": "2026-11-24"}})),
        damaged(tokens=token_with(tasks={"t": {"escalation": "first"}})),
        damaged(tokens=token_with(tasks={"t": {"candidates": ["ann"]}})),
        damaged(tokens=token_with(arrived={"left": 1})),
        damaged(tokens=token_with(arrived=[1])),
        damaged(tokens=token_with(multi={"needed": 1})),
        damaged(tokens=token_with(multi=3)),
        damaged(tokens=token_with(timers=["t"])),
        damaged(steps={"a": 1}),
        damaged(steps=[]),
        damaged(vars=[1]),
        damaged(seq="ten"),
        damaged(mailbox={"a": 1}),
        damaged(strays=["t"]),
    ],
)
def test_damaged_states_are_refused(data: Any) -> None:
    with pytest.raises(StateFormatError, match="damaged flow state"):
        state_from_dict(data)


# -- saved, loaded, advanced -------------------------------------------------------------


def busy() -> Any:
    return flow(
        [
            start(),
            parallel("split"),
            task("a", mode="all", due={"working_hours": 3}, escalations=[
                {"action": "remind", "repeat": "PT1H"},
                {"after": {"working_hours": 2}, "action": "reassign", "to": {"role": "manager"}},
            ]),
            task("b", multi={"over": var("record.tags")}),
            wait("w", message="m", timeout={"after": "P1D"}),
            parallel("join"),
            end(),
            end("late"),
        ],
        [
            *chain("start", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("split", "w"),
            edge("a", "join"),
            edge("b", "join"),
            edge("w", "join", on="met"),
            edge("w", "late", on="timeout"),
            edge("join", "end"),
        ],
    )  # fmt: skip


def test_a_state_saved_mid_flow_advances_like_the_unsaved_one() -> None:
    run = Run(busy(), {"tags": ["x", "y"]}, zone=SHANGHAI, calendar=OFFICE)
    run.start()
    steps = 0
    while run.status == "running" and steps < 40:
        steps += 1
        # escalations fire between completions; the message comes when the tasks are done
        escalations = [key for key in run.live_timers() if run.timers[key].node == "a"]
        if run.open_tasks() and (steps % 3 == 0 or not escalations):
            event: Event = TaskDone(run.open_tasks()[0], "done", "ann")
        elif not run.open_tasks():
            event = MessageSent("m")
        else:
            run.now = max(run.now, run.timers[escalations[0]].due)
            event = TimerFired(escalations[0])
        saved = state_from_dict(stored(run.state))
        assert saved == run.state
        kept = advance(run.flow, run.state, event, run.context())
        loaded = advance(run.flow, saved, event, run.context())
        assert loaded.effects == kept.effects
        assert [e.to_dict() for e in loaded.effects] == [e.to_dict() for e in kept.effects]
        assert stored(loaded.state) == stored(kept.state)
        run.send(event)
    assert run.status == "completed"
    assert {"task_reminded", "task_reassigned", "task_completed"} <= {e.kind for e in run.history}
    assert of(run.history, StepCompleted)[-1] == StepCompleted(node="w", outcome="met")
    assert run.now > NOW and steps > 10
