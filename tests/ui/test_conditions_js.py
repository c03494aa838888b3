"""The condition builder (ui/static/conditions.js) writes only what the server takes.

The list's filter bar must write filters the list API compiles to SQL (docs/filters.md), on
both databases; the designer's `visible_if` rules must run in the server's evaluator. The
builder's own behaviour is tested on Node (tests/ui/conditions.test.mjs, run by
test_logic_js.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.engines.logic import LogicError, UnknownOperator, evaluate
from formloom.engines.logic.sql import FilterTarget, compile_filter

HERE = Path(__file__).resolve().parent
NOW = datetime(2024, 5, 16, 9, 0, tzinfo=UTC)


def _rules() -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to run the browser's condition builder: install node")
    run = subprocess.run(
        [node, str(HERE / "condition_rules.mjs")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    rules: list[dict[str, Any]] = json.loads(run.stdout)
    return rules


RULES = _rules()


def test_the_builder_writes_rules_for_every_type_in_both_places() -> None:
    assert {(r["place"], r["type"]) for r in RULES} >= {
        ("filter", "boolean"),
        ("visibility", "computed"),
    }
    assert len(RULES) > 150


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_filter_the_list_bar_writes_compiles_to_sql(dialect: Any) -> None:
    for item in (r for r in RULES if r["place"] == "filter"):
        if item["type"] in ("file", "image", "table", "computed"):
            continue  # not filterable: the list page offers no such field
        target = FilterTarget(sa.column("data", sa.JSON()), {"f": item["type"]}, {}, dialect)
        compile_filter(item["rule"], target, now=NOW)  # raises FilterError when outside the subset


def test_every_visibility_rule_the_designer_writes_runs_in_the_server_evaluator() -> None:
    for item in (r for r in RULES if r["place"] == "visibility"):
        for data in ({}, {"f": None}, {"f": "x"}, {"f": ["a"]}, {"f": 3}):
            try:
                evaluate(item["rule"], data, now=NOW)
            except UnknownOperator:
                raise
            except LogicError:
                pass  # a value of another type may not compare; the operators are known
