"""Run the JsonLogic conformance data against :func:`evaluate` and report the figures.

Two sets of public test data are kept in this folder, byte for byte as published (sources
and licences in README.md), so a plain clone runs them; ``$FORMLOOM_CONFORMANCE_DIR`` points
elsewhere:

* ``jsonlogic/tests.json`` — the classic jsonlogic.com suite: a JSON array whose strings are
  section comments and whose lists are ``[rule, data, expected]``;
* ``jsonlogic/compat-tables/`` — the community compat tables: ``index.json`` names the suite
  files; each is an array of comment strings and ``{description, rule, data, result}`` or
  ``{..., error}`` objects (an error case passes when evaluation raises :class:`LogicError`).

Results are compared as JSON: a boolean is never equal to a number, ``1 == 1.0``, and cases
flagged ``"decimal"`` (or any float result) allow a 1e-9 tolerance.

``python -m tests.conformance.jsonlogic_suites [DIR]`` prints the per-suite table and the
totals. The tests in ``tests/engines/logic`` and ``tests/ui`` use the same loaders, so the
figure in docs/jsonlogic.md, the command and the ratchet test always agree. (This runner
lived in the engine; it is test tooling, and the engine reads no files.)
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from formloom.engines.logic import LogicError, evaluate

#: A fixed clock, so date extensions (unused by the public data) stay deterministic.
FIXED_NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def conformance_dir() -> Path:
    """The conformance data: ``$FORMLOOM_CONFORMANCE_DIR``, or this folder."""
    override = os.environ.get("FORMLOOM_CONFORMANCE_DIR")
    return Path(override) if override else Path(__file__).resolve().parent


def json_equal(got: Any, expected: Any, *, tolerance: float = 0.0) -> bool:
    """Deep JSON equality: booleans are not numbers, ints equal whole floats."""
    tg = type(got)
    te = type(expected)
    if tg is bool or te is bool:
        return tg is te and got == expected
    if tg in (int, float) and te in (int, float):
        if got == expected:
            return True
        return bool(tolerance) and math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance)
    if tg is not te:
        return False
    if tg is list:
        return len(got) == len(expected) and all(
            json_equal(g, e, tolerance=tolerance) for g, e in zip(got, expected, strict=True)
        )
    if tg is dict:
        return got.keys() == expected.keys() and all(
            json_equal(got[k], expected[k], tolerance=tolerance) for k in got
        )
    return bool(got == expected)


@dataclass(frozen=True)
class Case:
    """One conformance case: ``expected`` is a result, or ``error`` is the expected error."""

    suite: str
    index: int
    description: str
    rule: Any
    data: Any
    expected: Any = None
    error: Any = None
    decimal: bool = False

    @property
    def expects_error(self) -> bool:
        return self.error is not None


@dataclass
class Outcome:
    case: Case
    passed: bool
    got: Any = None
    raised: LogicError | None = None

    @property
    def error_type_matches(self) -> bool:
        """For error cases: did the raised error carry the expected ``type``?"""
        if self.raised is None or not isinstance(self.case.error, dict):
            return False
        value = self.raised.error_value
        return isinstance(value, dict) and value.get("type") == self.case.error.get("type")


def load_classic(root: Path | None = None) -> list[Case]:
    """The classic suite's cases, in file order (raises ``FileNotFoundError`` if absent)."""
    path = (root or conformance_dir()) / "jsonlogic" / "tests.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for item in items:
        if isinstance(item, list):
            rule, data, expected = item
            cases.append(Case("tests.json", len(cases), "", rule, data, expected))
    return cases


def compat_suites(root: Path | None = None) -> list[str]:
    """The compat-table suite files, as listed in their ``index.json``."""
    path = (root or conformance_dir()) / "jsonlogic" / "compat-tables" / "index.json"
    suites: list[str] = json.loads(path.read_text(encoding="utf-8"))
    return suites


def load_compat(root: Path | None = None) -> list[Case]:
    """Every compat-table case, suite by suite in index order."""
    base = (root or conformance_dir()) / "jsonlogic" / "compat-tables"
    cases = []
    for suite in compat_suites(root):
        items = json.loads((base / suite).read_text(encoding="utf-8"))
        index = 0
        for item in items:
            if not isinstance(item, dict):
                continue
            cases.append(
                Case(
                    suite=suite,
                    index=index,
                    description=str(item.get("description", "")),
                    rule=item.get("rule"),
                    data=item.get("data"),
                    expected=item.get("result"),
                    error=item.get("error"),
                    decimal=bool(item.get("decimal", False)),
                )
            )
            index += 1
    return cases


def run_case(case: Case) -> Outcome:
    try:
        got = evaluate(case.rule, case.data, now=FIXED_NOW)
    except LogicError as error:
        return Outcome(case, passed=case.expects_error, raised=error)
    if case.expects_error:
        return Outcome(case, passed=False, got=got)
    tolerance = 1e-9 if case.decimal or isinstance(got, float) else 0.0
    return Outcome(case, json_equal(got, case.expected, tolerance=tolerance), got=got)


@dataclass
class SuiteResult:
    suite: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(outcome.passed for outcome in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)


def run_compat(root: Path | None = None) -> list[SuiteResult]:
    results: dict[str, SuiteResult] = {}
    for case in load_compat(root):
        results.setdefault(case.suite, SuiteResult(case.suite)).outcomes.append(run_case(case))
    return list(results.values())


def _render(case: Case, outcome: Outcome) -> str:
    want = f"error {case.error}" if case.expects_error else json.dumps(case.expected)
    if outcome.raised is not None:
        got = f"error {outcome.raised.error_value} ({outcome.raised})"
    else:
        got = json.dumps(outcome.got)
    return f"    [{case.index}] {case.description}: {json.dumps(case.rule)} -> {got}; want {want}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args
    paths = [arg for arg in args if arg != "-v"]
    root = Path(paths[0]) if paths else None

    classic = [run_case(case) for case in load_classic(root)]
    classic_passed = sum(outcome.passed for outcome in classic)
    print(f"classic suite (jsonlogic/tests.json): {classic_passed}/{len(classic)}")

    results = run_compat(root)
    width = max(len(result.suite) for result in results)
    print(f"\ncompat tables ({len(results)} suites):")
    for result in results:
        mark = "" if result.passed == result.total else "  <-"
        print(f"  {result.suite:<{width}}  {result.passed:>4}/{result.total:<4}{mark}")
        if verbose:
            for outcome in result.outcomes:
                if not outcome.passed:
                    print(_render(outcome.case, outcome))
    passed = sum(result.passed for result in results)
    total = sum(result.total for result in results)
    errors = [o for result in results for o in result.outcomes if o.case.expects_error]
    exact = sum(o.passed and o.error_type_matches for o in errors)
    print(f"\ncompat tables total: {passed}/{total}")
    print(f"error cases raising the expected error type: {exact}/{len(errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
