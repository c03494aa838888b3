"""The community compat tables (tests/conformance/jsonlogic/compat-tables): a ratchet.

``test_pass_count`` runs all 1138 cases and asserts the figure never drops below what
Formloom reached (see docs/jsonlogic.md); every case also runs on its own so that a
regression names the case. Cases listed in ``KNOWN_FAILURES`` are expected to fail (strict
xfail: fixing one makes the suite ask for the list and the ratchet to be updated).
"""

from __future__ import annotations

import json

import pytest

from tests.conformance.jsonlogic_suites import (
    Case,
    conformance_dir,
    load_compat,
    run_case,
    run_compat,
)

#: The figure reached; raise it when more cases pass, never lower it.
RATCHET = 1138
TOTAL_CASES = 1138

#: ``suite:index`` of cases that are knowingly not passed (with the reason in docs/jsonlogic.md).
KNOWN_FAILURES: frozenset[str] = frozenset()

CONFORMANCE = conformance_dir()  # tests/conformance, or $FORMLOOM_CONFORMANCE_DIR

try:
    CASES = load_compat(CONFORMANCE)
except FileNotFoundError:  # reported by test_pass_count, which must fail, not skip
    CASES = []


def _key(case: Case) -> str:
    return f"{case.suite}:{case.index}"


def _case_id(case: Case) -> str:
    return f"{_key(case)}:{case.description[:60]}"


def test_pass_count() -> None:
    results = run_compat(CONFORMANCE)
    total = sum(result.total for result in results)
    passed = sum(result.passed for result in results)
    assert total == TOTAL_CASES
    assert passed >= RATCHET, "\n".join(
        f"{result.suite}: {result.passed}/{result.total}"
        for result in results
        if result.passed < result.total
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.xfail(strict=True))
        if _key(case) in KNOWN_FAILURES
        else case
        for case in CASES
    ],
    ids=_case_id,
)
def test_compat_case(case: Case) -> None:
    outcome = run_case(case)
    want = f"an error {case.error}" if case.expects_error else json.dumps(case.expected)
    got = f"error {outcome.raised}" if outcome.raised is not None else json.dumps(outcome.got)
    assert outcome.passed, (
        f"{json.dumps(case.rule)} with {json.dumps(case.data)}: got {got}, want {want}"
    )


def test_error_cases_carry_the_expected_type() -> None:
    """Beyond "some error": NaN, Invalid Arguments and thrown types are reported as such."""
    outcomes = [run_case(case) for case in CASES if case.expects_error]
    wrong = [o.case.description for o in outcomes if not o.error_type_matches]
    assert outcomes and not wrong
