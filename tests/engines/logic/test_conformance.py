"""The classic jsonlogic.com suite (tests/conformance/jsonlogic/tests.json): 277 of 277.

Each case runs as its own test. The data is kept in the repository (``tests/conformance``,
or ``$FORMLOOM_CONFORMANCE_DIR``); if it is missing the count test fails rather than letting
the suite silently shrink to nothing.
"""

from __future__ import annotations

import json

import pytest

from formloom.engines.logic import evaluate
from tests.conformance.jsonlogic_suites import Case, conformance_dir, json_equal, load_classic

EXPECTED_CASES = 277

CONFORMANCE = conformance_dir()  # tests/conformance, or $FORMLOOM_CONFORMANCE_DIR

try:
    CASES = load_classic(CONFORMANCE)
except FileNotFoundError:  # reported by test_case_count, which must fail, not skip
    CASES = []


def _case_id(case: Case) -> str:
    return f"{case.index:03d}:{json.dumps(case.rule, separators=(',', ':'))[:70]}"


def test_case_count() -> None:
    path = CONFORMANCE / "jsonlogic" / "tests.json"
    assert path.is_file(), f"classic suite not found at {path} (set FORMLOOM_CONFORMANCE_DIR)"
    assert len(CASES) == EXPECTED_CASES


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_classic_case(case: Case) -> None:
    got = evaluate(case.rule, case.data)
    assert json_equal(got, case.expected), (
        f"{json.dumps(case.rule)} with {json.dumps(case.data)}: "
        f"got {json.dumps(got)}, want {json.dumps(case.expected)}"
    )
