"""Adding a signer (加签): one more person must do a step, beside whoever has it now."""

from __future__ import annotations

import pytest

from formloom.engines.flows.engine import FlowInputError, SignerAdded
from formloom.engines.flows.state import TaskClosed, TaskOpened

from .factory import Run, line, of, outcomes, task


def test_a_signer_makes_the_step_wait_for_them_too() -> None:
    run = Run(line(task("approve", assignee={"user": "ann"})))
    run.start()
    first = run.task("approve")
    (opened,) = of(run.send(SignerAdded(first, "bob", "ann")), TaskOpened)
    assert opened.assignee == "bob" and opened.node == "approve" and not opened.claim
    run.complete("approve", task=first)
    assert run.status == "running"
    assert run.open_tasks("approve") == [opened.task]
    run.complete("approve", task=opened.task, actor="bob")
    assert run.status == "completed"
    assert run.completed() == [("approve", "done"), ("approve", "done")]


def test_a_signer_on_an_all_step_and_a_veto_ends_it() -> None:
    spec = line(
        task(
            "review",
            assignee={"role": "nurse"},
            mode="all",
            outcomes=outcomes("ok", "no", no={"veto": True}),
        )
    )
    run = Run(spec)
    run.start()
    people = run.open_tasks("review")
    (extra,) = of(run.send(SignerAdded(people[0], "zoe", "ann")), TaskOpened)
    assert run.state.tokens[0].multi is not None
    assert run.state.tokens[0].multi.needed == len(people) + 1
    effects = run.complete("review", "no", task=extra.task, actor="zoe")
    assert sorted(e.task for e in of(effects, TaskClosed)) == sorted(people)


def test_signer_refusals() -> None:
    run = Run(line(task("approve", assignee={"user": "ann"})))
    run.start()
    first = run.task("approve")
    with pytest.raises(FlowInputError) as twice:
        run.send(SignerAdded(first, "ann", "ann"))
    assert twice.value.code == "signer_exists"
    with pytest.raises(FlowInputError) as unknown:
        run.send(SignerAdded("i.999", "bob", "ann"))
    assert unknown.value.code == "not_open"
    run.complete("approve", task=first)
    with pytest.raises(FlowInputError) as closed:
        run.send(SignerAdded(first, "bob", "ann"))
    assert closed.value.code == "closed"
