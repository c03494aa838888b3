"""simulate(): a script of choices (some taking time), messages and record changes played
against the clock; escalations in the timeline; the horizon and max_events stops;
subflows; and differential tests: the simulated timeline is exactly what driving advance()
step by step with the same choices produces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from formloom.engines.flows.engine import (
    MessageSent,
    RecordChanged,
    TaskDone,
    TaskReturned,
    TimerFired,
)
from formloom.engines.flows.simulate import Script, Simulation, simulate
from formloom.engines.flows.spec import FlowSpec
from formloom.engines.flows.state import Effect, RecordSet
from formloom.engines.logic.dates import format_datetime

from .factory import (
    NOW,
    OFFICE,
    PEOPLE,
    SHANGHAI,
    Run,
    action,
    chain,
    edge,
    end,
    eq,
    flow,
    line,
    outcomes,
    parallel,
    set_values,
    start,
    subflow,
    task,
    timer,
    wait,
)
from .test_check import good, legal

H = timedelta(hours=1)


def at(delta: timedelta) -> str:
    return format_datetime(NOW + delta)


def sim(
    spec: FlowSpec, script: Script, record: dict[str, Any] | None = None, **kw: Any
) -> Simulation:
    return simulate("clinic", spec, {"id": "r1", **(record or {})}, script, now=NOW,
                    directory=PEOPLE, **kw)  # fmt: skip


def events(result: Simulation, *kinds: str) -> list[tuple[str, str, str]]:
    """(at, kind, node) of the timeline entries of ``kinds``."""
    return [
        (entry["at"], entry["kind"], entry.get("node") or entry.get("status") or "")
        for entry in result.timeline
        if entry["kind"] in kinds
    ]


def test_choices_that_take_time() -> None:
    spec = line(task("a"), task("b", outcomes=outcomes("ok", "no")))
    result = sim(
        spec,
        Script(
            choices={
                "a": [{"outcome": "done", "after": "PT2H", "actor": "bob", "comment": "ok"}],
                "b": ["no"],
            }
        ),
    )
    assert (result.status, result.stopped) == ("completed", "ended")
    assert events(result, "task_opened", "task_completed", "instance_ended") == [
        (at(0 * H), "task_opened", "a"),
        (at(2 * H), "task_completed", "a"),
        (at(2 * H), "task_opened", "b"),
        (at(2 * H), "task_completed", "b"),
        (at(2 * H), "instance_ended", "completed"),
    ]
    done = [e for e in result.timeline if e["kind"] == "task_completed"]
    assert [(e["actor"], e["outcome"], e["comment"]) for e in done] == [
        ("bob", "done", "ok"),
        ("(nurse)", "no", None),  # nobody named: the role stands in
    ]
    assert result.open_tasks == [] and {e["instance"] for e in result.timeline} == {"sim"}


def test_a_task_without_a_choice_stays_open_and_its_escalations_show() -> None:
    spec = line(
        task(
            "call",
            due={"after": "PT4H"},
            outcomes=outcomes("reached", "gave_up"),
            escalations=[
                {"action": "remind"},
                {"after": {"after": "PT20H"}, "action": "complete", "outcome": "gave_up"},
            ],
        )
    )
    result = sim(spec, Script())
    assert events(result, "task_reminded", "task_completed", "instance_ended") == [
        (at(4 * H), "task_reminded", "call"),
        (at(24 * H), "task_completed", "call"),
        (at(24 * H), "instance_ended", "completed"),
    ]
    completed = next(e for e in result.timeline if e["kind"] == "task_completed")
    assert (completed["outcome"], completed["actor"]) == ("gave_up", None)

    idle = sim(line(task("call")), Script())
    assert (idle.status, idle.stopped) == ("running", "idle")
    assert [(t["node"], t["candidates"], t["due"]) for t in idle.open_tasks] == [
        ("call", {"roles": ["nurse"], "users": []}, None)
    ]
    assert sim(line(task("call")), Script(default_outcome=True)).status == "completed"


def deferred() -> FlowSpec:
    return flow(
        [start(), wait("reply", message="reply", timeout={"after": "P3D"}), task("read")]
        + [task("chase"), end("e1"), end("e2")],
        [
            edge("start", "reply"),
            edge("reply", "read", on="met"),
            edge("reply", "chase", on="timeout"),
            edge("read", "e1"),
            edge("chase", "e2"),
        ],
    )


def test_messages() -> None:
    script = Script(default_outcome=True, messages=[{"name": "reply", "after": "P1D"}])
    replied = sim(deferred(), script)
    assert events(replied, "step_completed", "timer_cancelled") == [
        (at(24 * H), "timer_cancelled", "reply"),
        (at(24 * H), "step_completed", "reply"),
        (at(24 * H), "step_completed", "read"),
    ]
    assert replied.stopped == "ended"
    late = sim(
        deferred(), Script(default_outcome=True, messages=[{"name": "reply", "after": "P5D"}])
    )
    assert events(late, "step_completed") == [
        (at(72 * H), "step_completed", "reply"),
        (at(72 * H), "step_completed", "chase"),
    ]
    assert (late.status, late.stopped) == ("completed", "ended")


def test_record_changes_release_a_wait_and_cancel_the_flow() -> None:
    spec = flow(
        [start(), wait("paid", until=eq("record.status", "paid")), task("ship"), end()],
        [edge("start", "paid"), edge("paid", "ship", on="met"), edge("ship", "end")],
        cancel_when=eq("record.status", "refunded"),
    )
    paid = sim(spec, Script(changes=[{"after": "PT6H", "values": {"status": "paid"}}]),
               {"status": "open"})  # fmt: skip
    assert events(paid, "step_completed", "task_opened") == [
        (at(6 * H), "step_completed", "paid"),
        (at(6 * H), "task_opened", "ship"),
    ]
    assert paid.record == {"id": "r1", "status": "paid"}
    refunded = sim(spec, Script(changes=[{"after": "P2D", "values": {"status": "refunded"}}]),
                   {"status": "open"})  # fmt: skip
    assert (refunded.status, refunded.stopped) == ("cancelled", "ended")
    assert events(refunded, "instance_ended") == [(at(48 * H), "instance_ended", "cancelled")]


def test_a_set_action_is_seen_by_a_waiting_branch() -> None:
    spec = flow(
        [start(), parallel("split"), wait("w", until=eq("record.flag", True))]
        + [timer("t", after="PT1H"), action("mark", set_values(flag=True)), end("e1"), end("e2")],
        [
            edge("start", "split"),
            edge("split", "w"),
            edge("split", "t"),
            edge("w", "e1", on="met"),
            *chain("t", "mark", "e2"),
        ],
    )  # fmt: skip
    result = sim(spec, Script(), {"flag": False})
    assert events(result, "record_set", "step_completed") == [
        (at(H), "step_completed", "t"),
        (at(H), "record_set", "mark"),
        (at(H), "step_completed", "w"),
    ]
    assert result.status == "completed" and result.record["flag"] is True


def test_the_horizon_stops_a_long_wait() -> None:
    spec = line(timer("t", after="P2Y"), task("later"))
    result = sim(spec, Script())
    assert (result.status, result.stopped) == ("running", "horizon")
    short = sim(line(timer("t", after="P2D")), Script(), horizon=timedelta(days=1))
    assert short.stopped == "horizon"
    assert (
        sim(line(timer("t", after="P2D")), Script(), horizon=timedelta(days=3)).stopped == "ended"
    )


def test_a_cancelled_timer_beyond_the_horizon_does_not_hold_the_simulation() -> None:
    spec = flow(
        [start(), wait("w", message="m", timeout={"after": "P2Y"}), end(), end("late")],
        [edge("start", "w"), edge("w", "end", on="met"), edge("w", "late", on="timeout")],
    )
    result = sim(spec, Script(messages=[{"name": "m", "after": "P1D"}]))
    assert (result.status, result.stopped) == ("completed", "ended")
    assert result.timeline[-1]["at"] == at(24 * H)


def test_max_events_stops_an_endless_script() -> None:
    spec = line(
        task("t", due={"after": "PT1M"}, escalations=[{"action": "remind", "repeat": "PT1M"}])
    )
    result = sim(spec, Script(), max_events=50)
    assert (result.status, result.stopped) == ("running", "max_events")
    assert len(events(result, "task_reminded")) == 50


def test_subflows() -> None:
    child = line(task("check", assignee={"role": "doctor"}), key="audit")
    parent = line(subflow("audit_it", "audit", multi={"over": [1, 2]}), task("close"), key="main")
    result = sim(
        parent,
        Script(choices={"check": [{"outcome": "done", "after": "PT3H"},
                                  {"outcome": "done", "after": "PT1H"}],
                        "close": ["done"]}),
        flows={"audit": child},
    )  # fmt: skip
    assert (result.status, result.stopped) == ("completed", "ended")
    started = [e for e in result.timeline if e["kind"] == "subflow_started"]
    assert [(e["child"], e["vars"]) for e in started] == [("sim.2", {"item": 1}),
                                                          ("sim.3", {"item": 2})]  # fmt: skip
    ends = [(e["at"], e["instance"], e["status"]) for e in result.timeline
            if e["kind"] == "instance_ended"]  # fmt: skip
    assert ends == [
        (at(H), "sim.3", "completed"),
        (at(3 * H), "sim.2", "completed"),
        (at(3 * H), "sim", "completed"),
    ]
    assert events(result, "task_opened")[-1] == (at(3 * H), "task_opened", "close")


def test_a_choice_may_return_the_task_to_an_earlier_step() -> None:
    spec = line(task("draft"), task("review", returnable=True))
    result = sim(
        spec,
        Script(
            choices={
                "draft": ["done", {"outcome": "done", "after": "PT1H"}],
                "review": [{"return_to": "draft", "comment": "add the invoice"}, "done"],
            }
        ),
    )
    assert [entry for _, _, entry in events(result, "task_opened")] == [
        "draft", "review", "draft", "review"]  # fmt: skip
    assert any(e["kind"] == "task_closed" and e["reason"] == "returned" for e in result.timeline)
    assert result.status == "completed"


def test_to_dict() -> None:
    result = sim(line(task("a")), Script(default_outcome=True))
    data = result.to_dict()
    assert set(data) == {"status", "stopped", "timeline", "open_tasks", "record"}
    assert data["timeline"][0] == {"at": at(0 * H), "instance": "sim", "kind": "node_entered",
                                   "node": "start", "type": "start"}  # fmt: skip


# -- differential: simulate is advance() -------------------------------------------------


def timeline_of(run: Run, steps: list[tuple[timedelta, Any]]) -> list[dict[str, Any]]:
    """Drive ``run`` by hand: each step is (time since NOW, event or a function of the run
    giving one); a step whose effects set record values is followed by RecordChanged at
    the same time (as any host does)."""
    timeline: list[dict[str, Any]] = []

    def log(effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            timeline.append({"at": format_datetime(run.now), "instance": "sim", **effect.to_dict()})

    log(run.start(starter=None))
    for delta, step in steps:
        run.now = NOW + delta
        event = step(run) if callable(step) else step
        effects = run.send(event)
        log(effects)
        if any(isinstance(effect, RecordSet) for effect in effects):
            log(run.send(RecordChanged()))
    return timeline


def test_simulate_equals_advance_for_returns_and_escalations() -> None:
    spec = line(
        task("draft"),
        task("review", returnable=True, due={"after": "PT4H"}, escalations=[{"action": "remind"}],
             outcomes=outcomes("approve", "reject")),
    )  # fmt: skip
    script = Script(
        choices={
            "draft": [{"outcome": "done", "after": "PT1H", "actor": "ann"},
                      {"outcome": "done", "after": "PT30M", "actor": "ann"}],
            "review": [{"return_to": "draft", "after": "PT5H", "actor": "dan", "comment": "more"},
                       {"outcome": "approve", "after": "PT2H", "actor": "dan"}],
        }
    )  # fmt: skip
    simulated = sim(spec, script)
    run = Run(spec, instance="sim")
    by_hand = timeline_of(
        run,
        [
            (1 * H, lambda r: TaskDone(r.task("draft"), "done", "ann")),
            (5 * H, lambda r: TimerFired(r.live_timers()[0])),
            (6 * H, lambda r: TaskReturned(r.task("review"), "draft", "dan", "more")),
            (6.5 * H, lambda r: TaskDone(r.task("draft"), "done", "ann")),
            (8.5 * H, lambda r: TaskDone(r.task("review"), "approve", "dan")),
        ],
    )
    assert simulated.timeline == by_hand
    assert run.status == simulated.status == "completed"
    assert [e["kind"] for e in by_hand].count("task_reminded") == 1


def test_simulate_equals_advance_for_parallel_work_timers_and_record_changes() -> None:
    spec = flow(
        [start(), parallel("split"), task("a", mode="all", assignee={"role": "doctor"}),
         timer("t", working_hours=1), action("mark", set_values(flag=True)),
         wait("w", until=eq("record.flag", True), timeout={"after": "P1D"}),
         parallel("join"), end(), end("late")],
        [edge("start", "split"), edge("split", "a"), edge("split", "t"), edge("split", "w"),
         edge("a", "join"), *chain("t", "mark", "join"), edge("w", "join", on="met"),
         edge("w", "late", on="timeout"), edge("join", "end")],
    )  # fmt: skip
    script = Script(choices={"a": [{"outcome": "done", "after": "PT3H", "actor": "dan"},
                                   {"outcome": "done", "after": "PT2H", "actor": "eve"}]}
                    )  # fmt: skip
    options: dict[str, Any] = {"zone": SHANGHAI, "calendar": OFFICE}
    simulated = sim(spec, script, {"flag": False}, **options)
    run = Run(spec, {"flag": False}, instance="sim", **options)
    # 09:30 + 1 working hour = 10:30; dan at 12:30, eve at 11:30
    by_hand = timeline_of(
        run,
        [
            (1 * H, lambda r: TimerFired(r.timer("t"))),
            (2 * H, lambda r: TaskDone(r.open_tasks("a")[1], "done", "eve")),
            (3 * H, lambda r: TaskDone(r.open_tasks("a")[0], "done", "dan")),
        ],
    )
    assert simulated.timeline == by_hand
    assert simulated.status == run.status == "completed"
    assert simulated.record == run.record == {"id": "r1", "flag": True}


def test_simulate_equals_advance_for_messages_and_a_kept_message() -> None:
    spec = flow(
        [start(), task("a"), wait("w", message="paid", timeout={"after": "P2D"}), task("b")]
        + [end(), end("late")],
        [*chain("start", "a", "w"), edge("w", "b", on="met"), edge("w", "late", on="timeout"),
         edge("b", "end")],
    )  # fmt: skip
    script = Script(
        choices={"a": [{"outcome": "done", "after": "PT5H"}],
                 "b": [{"outcome": "done", "after": "PT1H"}]},
        messages=[{"name": "paid", "after": "PT2H", "data": {"amount": 5}}],
    )  # fmt: skip
    simulated = sim(spec, script)
    run = Run(spec, instance="sim")
    by_hand = timeline_of(
        run,
        [
            (2 * H, MessageSent("paid", {"amount": 5})),
            (5 * H, lambda r: TaskDone(r.task("a"), "done", "(nurse)")),
            (6 * H, lambda r: TaskDone(r.task("b"), "done", "(nurse)")),
        ],
    )
    assert simulated.timeline == by_hand
    assert simulated.status == "completed"


def test_a_checked_flow_with_every_node_type_runs_to_its_end() -> None:
    handle, audit = FlowSpec.model_validate(good()), FlowSpec.model_validate(legal())
    record = {"dept": "cardio", "amount": 500, "tags": ["refund", "legal"], "handler": "s1",
              "received": "2026-11-24", "subject": "late delivery"}  # fmt: skip
    script = Script(
        starter="sue",
        choices={"triage": [{"outcome": "major", "after": "PT1H", "actor": "ann"}],
                 "investigate": [{"outcome": "done", "after": "P1D"}]},
        messages=[{"name": "customer_reply", "after": "P4D"}],
        default_outcome=True,
    )  # fmt: skip
    result = sim(handle, script, record, flows={"legal": audit}, zone=SHANGHAI, calendar=OFFICE)
    assert (result.status, result.stopped) == ("completed", "ended")
    opened = [node for _, _, node in events(result, "task_opened")]
    assert opened == ["triage", "investigate", "investigate", "legal_review", "refund"]
    assert [node for _, _, node in events(result, "actions_planned")] == ["tell_legal"]
    # one investigation is enough (complete any); the other stays open (cancel_rest false)
    # and its result, a day later, is recorded while the flow has moved on
    done = [(e["at"], e["node"]) for e in result.timeline if e["kind"] == "task_completed"]
    assert [d for d in done if d[1] == "investigate"] == [
        (at(H), "investigate"),
        (at(25 * H), "investigate"),
    ]
    assert not any(e["kind"] == "task_closed" for e in result.timeline)
    minor = sim(handle, Script(default_outcome=True), record, flows={"legal": audit})
    assert minor.status == "completed"
    assert [node for _, _, node in events(minor, "task_opened")] == ["triage", "call"]


def test_a_subflow_cancelled_on_its_own_moves_the_parent_on() -> None:
    child = line(task("check"), key="audit", cancel_when=eq("record.status", "void"))
    parent = line(subflow("audit_it", "audit"), task("close"), key="main")
    script = Script(changes=[{"after": "PT1H", "values": {"status": "void"}}])
    result = sim(parent, script, flows={"audit": child})
    ends = [(e["instance"], e["status"]) for e in result.timeline if e["kind"] == "instance_ended"]
    assert ends == [("sim.2", "cancelled")]
    steps = [(e["node"], e["outcome"]) for e in result.timeline if e["kind"] == "step_completed"]
    assert steps == [("audit_it", "cancelled")]
    assert [(t["instance"], t["node"]) for t in result.open_tasks] == [("sim", "close")]
    # a parent that withdraws its child is not moved on by the child's end
    withdrawn = sim(line(subflow("audit_it", "audit"), task("close"), key="main",
                         cancel_when=eq("record.status", "void")),
                    script, flows={"audit": child})  # fmt: skip
    assert withdrawn.status == "cancelled" and withdrawn.open_tasks == []
