"""The workflow control-flow patterns (Russell, ter Hofstede, van der Aalst, Mulyar 2006,
"Workflow Control-Flow Patterns: A Revised View") the flow engine supports, one test each,
named after the pattern. Each drives :func:`advance` through the factory's ``Run`` and
asserts the tasks reached and their order, the final status and what was withdrawn.

* WCP1 sequence: a -> b -> c, one task open at a time, in order.
* WCP2 parallel split: one token becomes three open tasks at once.
* WCP3 synchronization: the task after a parallel join opens only when both branches are done.
* WCP4 exclusive choice: one branch by the record's data, the first true edge wins, default.
* WCP5 simple merge: either branch reaches the same next task, once.
* WCP6 multi-choice: an inclusive split takes every branch whose condition holds (default else).
* WCP7 structured synchronizing merge: the inclusive join waits for the branches taken, only.
* WCP8 multi-merge: an exclusive join passes every token on (the next task runs twice).
* WCP10 arbitrary cycles: a cycle entered at two points, left by an outcome.
* WCP11 implicit termination: the instance completes when no work is left, without terminate.
* WCP13 multiple instances with design-time knowledge: a literal list of three items.
* WCP14 multiple instances with runtime knowledge: the list comes from the record; empty skips.
* WCP16 deferred choice: a message raced against a timeout, both orders.
* WCP19 cancel task: a timer's cancel node withdraws one task (and nothing when it is done).
* WCP20 cancel case: the Cancel event, and ``cancel_when`` on a record change.
* WCP21 structured loop: a while loop whose condition reads a value an action node counts up.
* WCP24 persistent trigger: a message sent before the wait is reached is kept and consumed.
* WCP25 cancel region: a cancel node withdraws a task and a timer, other work goes on.
* WCP26 cancel multiple instance activity: the open instances of a multi task are withdrawn.
* WCP34 static partial join for multiple instances: 2 of 3, the third stays open, recorded.
* WCP35 cancelling partial join for multiple instances: 2 of 3, the third is withdrawn.
* WCP43 explicit termination: terminate withdraws the other branches' task and timer.
"""

from __future__ import annotations

from formloom.engines.flows.state import InstanceEnded, TaskCompleted, TaskOpened

from .factory import (
    Run,
    action,
    cancel,
    chain,
    edge,
    end,
    eq,
    exclusive,
    flow,
    inclusive,
    line,
    of,
    outcomes,
    parallel,
    set_values,
    start,
    task,
    terminate,
    timer,
    var,
    wait,
)


def test_wcp01_sequence() -> None:
    run = Run(line(task("a"), task("b"), task("c")))
    run.start()
    assert run.open_tasks() == [run.task("a")]
    run.complete("a")
    assert [run.tasks[key].node for key in run.open_tasks()] == ["b"]
    run.complete("b")
    assert [run.tasks[key].node for key in run.open_tasks()] == ["c"]
    assert run.status == "running"
    run.complete("c")
    assert run.opened() == ["a", "b", "c"]
    assert run.completed() == [("a", "done"), ("b", "done"), ("c", "done")]
    assert run.status == "completed"
    assert run.withdrawn() == []
    assert of(run.last, InstanceEnded) == [InstanceEnded(status="completed")]


def split3(kind: str) -> list[dict[str, object]]:
    """start, a split of ``kind``, tasks a, b, c, each with its own end."""
    return [start(), {"key": "split", "type": kind}, task("a"), task("b"), task("c")] + [
        end(f"end_{key}") for key in "abc"
    ]


def test_wcp02_parallel_split() -> None:
    spec = flow(
        split3("parallel"),
        [edge("start", "split")]
        + [edge("split", key) for key in "abc"]
        + [edge(key, f"end_{key}") for key in "abc"],
    )
    run = Run(spec)
    run.start()
    assert run.opened() == ["a", "b", "c"]  # all at once, in edge order
    assert len(run.open_tasks()) == 3
    run.complete("b")
    run.complete("a")
    assert run.status == "running" and run.open_tasks() == [run.task("c")]
    run.complete("c")
    assert run.status == "completed" and run.withdrawn() == []


def test_wcp03_synchronization() -> None:
    spec = flow(
        [start(), parallel("split"), task("a"), task("b"), parallel("join"), task("c"), end()],
        [
            *chain("start", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("a", "join"),
            edge("b", "join"),
            *chain("join", "c", "end"),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("b")
    assert run.opened() == ["a", "b"]  # c waits for a
    assert [token.node for token in run.state.tokens] == ["a", "join"]
    run.complete("a")
    assert run.opened() == ["a", "b", "c"]
    assert [token.node for token in run.state.tokens] == ["c"]  # the join's token is gone
    run.complete("c")
    assert run.status == "completed"


def choice() -> list[dict[str, object]]:
    """start -> split -> a (high) / b (refund tag) / c (default) -> own ends."""
    edges = [
        edge("start", "split"),
        edge("split", "a", when=eq("record.severity", "high")),
        edge("split", "b", when={"in": ["refund", var("record.tags")]}),
        edge("a", "end_a"),
        edge("b", "end_b"),
        edge("c", "end_c"),
        edge("split", "c", default=True),
    ]
    return edges


def test_wcp04_exclusive_choice() -> None:
    spec = flow(split3("exclusive"), choice())
    for record, expected in [
        ({"severity": "high", "tags": []}, ["a"]),
        ({"severity": "low", "tags": ["refund"]}, ["b"]),
        ({"severity": "high", "tags": ["refund"]}, ["a"]),  # the first edge that holds
        ({"severity": "low", "tags": []}, ["c"]),  # the default
    ]:
        run = Run(spec, record)
        run.start()
        assert run.opened() == expected, record
        run.complete(expected[0])
        assert run.status == "completed"


def test_wcp05_simple_merge() -> None:
    spec = flow(
        [start(), exclusive("split"), task("a"), task("b"), exclusive("merge"), task("c"), end()],
        [
            edge("start", "split"),
            edge("split", "a", when=eq("record.severity", "high")),
            edge("split", "b", default=True),
            edge("a", "merge"),
            edge("b", "merge"),
            *chain("merge", "c", "end"),
        ],
    )
    for severity, first in (("high", "a"), ("low", "b")):
        run = Run(spec, {"severity": severity})
        run.start()
        run.complete(first)
        assert run.opened() == [first, "c"]
        run.complete("c")
        assert run.status == "completed"
        assert run.entered().count("merge") == 1


def test_wcp06_multi_choice() -> None:
    spec = flow(split3("inclusive"), choice())
    for record, expected in [
        ({"severity": "high", "tags": ["refund"]}, ["a", "b"]),  # every edge that holds
        ({"severity": "high", "tags": []}, ["a"]),
        ({"severity": "low", "tags": []}, ["c"]),  # none holds: the default
    ]:
        run = Run(spec, record)
        run.start()
        assert run.opened() == expected, record
        for node in expected:
            run.complete(node)
        assert run.status == "completed"


def synchronizing_merge() -> Run:
    spec = flow(
        [start(), inclusive("split"), task("a"), task("b"), inclusive("join"), task("c"), end()],
        [
            edge("start", "split"),
            edge("split", "a", when=eq("record.severity", "high")),
            edge("split", "b", when={"in": ["refund", var("record.tags")]}),
            edge("a", "join"),
            edge("b", "join"),
            *chain("join", "c", "end"),
        ],
    )
    return Run(spec)


def test_wcp07_structured_synchronizing_merge() -> None:
    both = synchronizing_merge()
    both.record.update(severity="high", tags=["refund"])
    both.start()
    both.complete("a")
    assert both.opened() == ["a", "b"]  # b can still reach the join: it waits
    both.complete("b")
    assert both.opened() == ["a", "b", "c"]
    both.complete("c")
    assert both.status == "completed"
    assert both.entered().count("c") == 1

    one = synchronizing_merge()
    one.record.update(severity="low", tags=["refund"])
    one.start()
    assert one.opened() == ["b"]
    one.complete("b")  # nothing else can reach the join: it fires at once
    assert one.opened() == ["b", "c"]
    one.complete("c")
    assert one.status == "completed" and one.withdrawn() == []


def test_wcp08_multi_merge() -> None:
    spec = flow(
        [start(), parallel("split"), task("a"), task("b"), exclusive("merge"), task("c"), end()],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("a", "merge"),
            edge("b", "merge"),
            *chain("merge", "c", "end"),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("a")
    assert run.opened() == ["a", "b", "c"]  # the merge does not wait for b
    run.complete("b")
    assert run.opened() == ["a", "b", "c", "c"]  # and passes b's token on too
    first, second = run.open_tasks("c")
    run.complete("c", task=first)
    assert run.status == "running"
    run.complete("c", task=second)
    assert run.status == "completed"


def test_wcp10_arbitrary_cycles() -> None:
    # a -> b -> c -> (back) -> a: a cycle entered at a (low) or at b (high)
    spec = flow(
        [
            start(),
            exclusive("entry"),
            task("a"),
            task("b"),
            task("c", outcomes=outcomes("back", "ok")),
            end(),
        ],
        [
            edge("start", "entry"),
            edge("entry", "b", when=eq("record.severity", "high")),
            edge("entry", "a", default=True),
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a", outcome="back"),
            edge("c", "end", outcome="ok"),
        ],
    )
    run = Run(spec, {"severity": "high"})
    run.start()
    run.complete("b")
    run.complete("c", "back")
    run.complete("a")
    run.complete("b")
    run.complete("c", "back")
    run.complete("a")
    run.complete("b")
    run.complete("c", "ok")
    assert run.opened() == ["b", "c", "a", "b", "c", "a", "b", "c"]
    assert run.status == "completed"
    low = Run(spec, {"severity": "low"})
    low.start()
    assert low.opened() == ["a"]


def test_wcp11_implicit_termination() -> None:
    spec = flow(
        [start(), parallel("split"), task("a"), timer("t", after="P1D"), task("b")]
        + [end("end_a"), end("end_b")],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "t"),
            edge("a", "end_a"),
            *chain("t", "b", "end_b"),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("a")  # one path is done: the instance is not
    assert run.status == "running"
    assert of(run.last, InstanceEnded) == []
    run.fire("t")
    assert run.status == "running"
    run.complete("b")  # nothing left anywhere: it completes
    assert run.status == "completed"
    assert run.opened() == ["a", "b"]
    assert of(run.history, InstanceEnded) == [InstanceEnded(status="completed")]


def test_wcp13_multiple_instances_with_design_time_knowledge() -> None:
    spec = line(
        task("exam", multi={"over": ["ecg", "blood", "xray"]}, title="Exam {{ item }}"),
        task("review"),
    )
    run = Run(spec)
    run.start()
    opened = of(run.last, TaskOpened)
    assert [(e.node, e.item) for e in opened] == [
        ("exam", "ecg"),
        ("exam", "blood"),
        ("exam", "xray"),
    ]
    assert [e.context["item"] for e in opened] == ["ecg", "blood", "xray"]
    ecg, blood, xray = run.open_tasks("exam")
    run.complete("exam", task=blood)
    run.complete("exam", task=xray)
    assert run.opened().count("review") == 0  # all three must finish
    run.complete("exam", task=ecg)
    assert run.opened() == ["exam", "exam", "exam", "review"]
    assert run.state.steps["exam"]["outcomes"] == ["done", "done", "done"]
    run.complete("review")
    assert run.status == "completed" and run.withdrawn() == []


def test_wcp14_multiple_instances_with_runtime_knowledge() -> None:
    spec = line(task("call", multi={"over": var("record.tags")}), task("close"))
    run = Run(spec, {"tags": ["refund", "legal"]})
    run.start()
    assert [run.tasks[key].item for key in run.open_tasks("call")] == ["refund", "legal"]
    for key in run.open_tasks("call"):
        run.complete("call", task=key)
    assert run.opened() == ["call", "call", "close"]

    empty = Run(spec, {"tags": []})  # no item: the step is skipped
    empty.start()
    assert empty.opened() == ["close"]
    assert ("call", "skipped") in empty.steps()


def deferred_choice() -> Run:
    spec = flow(
        [start(), wait("reply", message="reply", timeout={"after": "P3D"})]
        + [task("read"), task("chase"), end("end_read"), end("end_chase")],
        [
            edge("start", "reply"),
            edge("reply", "read", on="met"),
            edge("reply", "chase", on="timeout"),
            edge("read", "end_read"),
            edge("chase", "end_chase"),
        ],
    )
    run = Run(spec)
    run.start()
    return run


def test_wcp16_deferred_choice() -> None:
    replied = deferred_choice()
    replied.later(days=1)
    effects = replied.message("reply", {"text": "ok"})
    assert replied.opened() == ["read"]
    assert replied.cancelled_timers(effects) == ["reply"]  # the timeout is withdrawn
    assert replied.state.steps["reply"] == {"outcome": "met", "data": {"text": "ok"}}
    replied.complete("read")
    assert replied.status == "completed"

    silent = deferred_choice()
    silent.fire("reply")
    assert silent.opened() == ["chase"]
    assert silent.now == silent.timers[next(iter(silent.timers))].due
    assert silent.state.steps["reply"]["outcome"] == "timeout"
    late = silent.message("reply")  # too late: the choice was made
    assert late == () and silent.opened() == ["chase"]
    silent.complete("chase")
    assert silent.status == "completed"


def test_wcp19_cancel_task() -> None:
    spec = flow(
        [start(), parallel("split"), task("a"), timer("t", after="P2D"), cancel("drop", "a")]
        + [end("end_a"), end("end_t")],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "t"),
            edge("a", "end_a"),
            *chain("t", "drop", "end_t"),
        ],
    )
    late = Run(spec)
    late.start()
    effects = late.fire("t")
    assert late.withdrawn(effects) == ["a"]
    assert late.status == "completed" and late.completed() == []

    early = Run(spec)
    early.start()
    early.complete("a")
    effects = early.fire("t")  # nothing left to withdraw
    assert early.withdrawn() == [] and early.status == "completed"
    assert early.completed() == [("a", "done")]


def case() -> Run:
    spec = flow(
        [start(), parallel("split"), task("a"), timer("t"), task("b"), end("end_a"), end("end_b")],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "t"),
            edge("a", "end_a"),
            *chain("t", "b", "end_b"),
        ],
        cancel_when=eq("record.status", "withdrawn"),
    )
    run = Run(spec, {"status": "open"})
    run.start()
    return run


def test_wcp20_cancel_case() -> None:
    cancelled = case()
    effects = cancelled.cancel("the customer withdrew")
    assert cancelled.status == "cancelled"
    assert cancelled.withdrawn(effects) == ["a"]
    assert cancelled.cancelled_timers(effects) == ["t"]
    assert of(effects, InstanceEnded) == [
        InstanceEnded(status="cancelled", reason="the customer withdrew")
    ]
    assert cancelled.state.tokens == []

    changed = case()
    assert changed.change(status="in progress") == ()  # cancel_when does not hold
    effects = changed.change(status="withdrawn")
    assert changed.status == "cancelled"
    assert changed.withdrawn(effects) == ["a"] and changed.cancelled_timers(effects) == ["t"]
    assert of(effects, InstanceEnded) == [InstanceEnded(status="cancelled", reason="cancel_when")]


def test_wcp21_structured_loop() -> None:
    # while record.amount < 3: work, count
    spec = flow(
        [
            start(),
            exclusive("check"),
            task("work"),
            action("count", set_values(amount={"+": [var("record.amount"), 1]})),
            end(),
        ],
        [
            edge("start", "check"),
            edge("check", "work", when={"<": [var("record.amount"), 3]}),
            edge("check", "end", default=True),
            *chain("work", "count", "check"),
        ],
    )
    run = Run(spec, {"amount": 0})
    run.start()
    while run.status == "running":
        run.complete("work")
    assert run.opened() == ["work", "work", "work"]
    assert run.record["amount"] == 3
    assert run.entered().count("check") == 4

    never = Run(spec, {"amount": 5})  # a while loop may run zero times
    never.start()
    assert never.opened() == [] and never.status == "completed"


def test_wcp24_persistent_trigger() -> None:
    spec = flow(
        [start(), task("a"), wait("paid", message="paid"), task("b"), end()],
        [*chain("start", "a", "paid"), edge("paid", "b", on="met"), edge("b", "end")],
    )
    run = Run(spec)
    run.start()
    assert run.message("paid", {"amount": 10}) == ()  # nobody waits yet: kept
    assert [m["name"] for m in run.state.mailbox] == ["paid"]
    run.complete("a")
    assert run.opened() == ["a", "b"]  # the wait consumed it at once
    assert run.state.mailbox == []
    assert run.state.steps["paid"] == {"outcome": "met", "data": {"amount": 10}}
    run.complete("b")
    assert run.status == "completed"


def test_wcp25_cancel_region() -> None:
    spec = flow(
        [
            start(),
            parallel("split"),
            task("a"),
            timer("t2", after="P5D"),
            task("b"),
            task("c"),
            timer("t", after="P1D"),
            cancel("drop", "a", "t2", "b"),
        ]
        + [end("end_a"), end("end_b"), end("end_c"), end("end_drop")],
        [
            edge("start", "split"),
            *(edge("split", key) for key in ("a", "t2", "c", "t")),
            edge("a", "end_a"),
            *chain("t2", "b", "end_b"),
            edge("c", "end_c"),
            *chain("t", "drop", "end_drop"),
        ],
    )
    run = Run(spec)
    run.start()
    effects = run.fire("t")
    assert run.withdrawn(effects) == ["a"]
    assert run.cancelled_timers(effects) == ["t2"]
    assert run.status == "running"  # c is outside the region
    assert [run.tasks[key].node for key in run.open_tasks()] == ["c"]
    run.complete("c")
    assert run.status == "completed"
    assert run.opened() == ["a", "c"]  # b was never reached


def test_wcp26_cancel_multiple_instance_activity() -> None:
    spec = flow(
        [
            start(),
            parallel("split"),
            task("visit", multi={"over": [1, 2, 3]}),
            timer("t"),
            cancel("drop", "visit"),
            end("end_v"),
            end("end_t"),
        ],
        [
            edge("start", "split"),
            edge("split", "visit"),
            edge("split", "t"),
            edge("visit", "end_v"),
            *chain("t", "drop", "end_t"),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("visit", task=run.open_tasks("visit")[0])
    effects = run.fire("t")
    assert run.withdrawn(effects) == ["visit", "visit"]
    assert run.status == "completed"


def partial_join(cancel_rest: bool) -> Run:
    spec = line(
        task(
            "review",
            multi={"over": ["x", "y", "z"], "complete": 2, "cancel_rest": cancel_rest},
            outcomes=outcomes("yes", "no"),
        ),
        task("decide"),
    )
    run = Run(spec)
    run.start()
    return run


def test_wcp34_static_partial_join_for_multiple_instances() -> None:
    run = partial_join(cancel_rest=False)
    x, y, z = run.open_tasks("review")
    run.complete("review", "yes", task=x)
    assert run.opened() == ["review"] * 3
    effects = run.complete("review", "no", actor="bob", task=z)
    assert run.opened() == ["review"] * 3 + ["decide"]  # 2 of 3: the flow moves on
    assert run.withdrawn(effects) == []  # y stays open
    assert run.open_tasks("review") == [y]
    assert run.state.steps["review"]["outcome"] == "no"
    run.complete("review", "yes", actor="cat", task=y)  # its result is recorded
    assert of(run.last, TaskCompleted)[0].task == y
    assert run.state.steps["review"]["outcomes"] == ["yes", "no", "yes"]
    assert run.state.steps["review"]["outcome"] == "no"  # the step's outcome stands
    assert run.opened().count("decide") == 1  # and the flow does not move again
    assert run.state.strays == {}
    run.complete("decide")
    assert run.status == "completed"

    left = partial_join(cancel_rest=False)  # the instance ends with a stray still open
    x, y, z = left.open_tasks("review")
    left.complete("review", "yes", task=x)
    left.complete("review", "yes", task=y)
    effects = left.complete("decide")
    assert left.status == "completed" and left.withdrawn(effects) == ["review"]


def test_wcp35_cancelling_partial_join_for_multiple_instances() -> None:
    run = partial_join(cancel_rest=True)
    x, y, z = run.open_tasks("review")
    run.complete("review", "yes", task=y)
    effects = run.complete("review", "yes", task=x)
    assert run.withdrawn(effects) == ["review"]
    assert run.open_tasks("review") == []
    assert run.opened() == ["review"] * 3 + ["decide"]
    assert run.state.steps["review"]["outcomes"] == ["yes", "yes"]
    run.complete("decide")
    assert run.status == "completed"


def test_wcp43_explicit_termination() -> None:
    spec = flow(
        [start(), parallel("split"), task("a"), task("b"), timer("t"), task("c"), terminate()]
        + [end("end_b"), end("end_c")],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("split", "t"),
            edge("a", "stop"),
            edge("b", "end_b"),
            *chain("t", "c", "end_c"),
        ],
    )
    run = Run(spec)
    run.start()
    effects = run.complete("a")
    assert run.status == "terminated"
    assert run.withdrawn(effects) == ["b"]
    assert run.cancelled_timers(effects) == ["t"]
    assert of(effects, InstanceEnded) == [InstanceEnded(status="terminated", reason="stop")]
    assert run.opened() == ["a", "b"]  # c was never reached
    assert run.state.tokens == []
