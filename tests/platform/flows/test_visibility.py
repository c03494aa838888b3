"""Which of an instance's values a reader with hidden fields sees (flows/visibility.py)."""

from __future__ import annotations

from typing import Any

from formloom.engines.flows import FlowSpec
from formloom.platform.flows.visibility import Redactor


def _flow(vars: dict[str, Any]) -> FlowSpec:
    return FlowSpec.model_validate(
        {
            "key": "f",
            "form": "case",
            "vars": vars,
            "nodes": [{"type": "start", "key": "s"}, {"type": "end", "key": "e"}],
            "edges": [{"from": "s", "to": "e"}],
        }  # fmt: skip
    )


FLOW = _flow(
    {
        "plain": {"var": "record.name"},
        "secret": {"var": "record.phone"},
        "nested": {"var": "record.phone.area"},
        "whole": {"var": "record"},
        "computed": {"var": {"cat": ["record.", "na", "me"]}},
        "through": {"cat": ["+86 ", {"var": "vars.secret"}]},
        "starter": {"var": "starter"},
    }
)
VALUES = {name: name for name in (*FLOW.vars, "given")}


def test_a_variable_is_shown_only_when_it_reads_nothing_hidden() -> None:
    shown = Redactor(FLOW, ["phone"], own_start=False).vars(VALUES)
    assert set(shown) == {"plain", "starter"}


def test_handed_in_variables_are_the_starters() -> None:
    assert "given" in Redactor(FLOW, ["phone"], own_start=True).vars(VALUES)
    assert "given" not in Redactor(FLOW, ["phone"], own_start=False).vars(VALUES)


def test_nothing_hidden_shows_everything() -> None:
    redact = Redactor(FLOW, [], own_start=False)
    assert redact.vars(VALUES) == VALUES
    steps = {"sub": {"outcome": "completed", "results": [{"x": 1}]}}
    assert redact.steps(steps) == steps


def test_timeline_entries_lose_hidden_values() -> None:
    redact = Redactor(FLOW, ["phone"], own_start=False)
    assert redact.effect("record_set", {"values": {"phone": "1", "name": "n"}}) == {
        "values": {"name": "n"}
    }
    assert redact.effect("subflow_started", {"child": "c", "vars": {"a": 1}}) == {"child": "c"}
    planned = redact.effect("actions_planned", {"actions": [{"type": "notify", "data": {"b": 1}}]})
    assert planned == {"actions": [{"type": "notify"}]}
    assert redact.steps({"sub": {"outcome": "completed", "results": [{"x": 1}]}}) == {
        "sub": {"outcome": "completed"}
    }
