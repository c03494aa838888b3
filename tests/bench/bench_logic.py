"""Throughput of the JsonLogic evaluator on rules shaped like Formloom's hot paths.

Run: ``.venv/bin/python tests/bench/bench_logic.py``. Prints evaluations per second for
visibility conditions, computed fields and a table aggregate; not collected by pytest.
"""

from __future__ import annotations

import timeit
from datetime import UTC, datetime
from typing import Any

from formloom.engines.logic import evaluate

NOW = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)

RECORD: dict[str, Any] = {
    "status": "open",
    "age": 42,
    "tags": ["hypertension", "vip"],
    "blocked": False,
    "dob": "1981-06-02",
    "qty": 3,
    "price": 19.5,
    "discount": 10,
    "bmi": 27.4,
    "items": [{"qty": i % 4 + 1, "price": 2.5 * (i % 7)} for i in range(20)],
}

CASES: dict[str, Any] = {
    "visible_if: field == value": {"==": [{"var": "status"}, "open"]},
    "visible_if: and of three": {
        "and": [
            {">=": [{"var": "age"}, 18]},
            {"in": ["vip", {"var": "tags"}]},
            {"!": {"var": "blocked"}},
        ]
    },
    "computed: price formula": {
        "*": [{"var": "qty"}, {"var": "price"}, {"-": [1, {"/": [{"var": "discount"}, 100]}]}]
    },
    "computed: if/elseif chain": {
        "if": [
            {"<": [{"var": "bmi"}, 18.5]},
            "under",
            {"<": [{"var": "bmi"}, 25]},
            "normal",
            {"<": [{"var": "bmi"}, 30]},
            "over",
            "obese",
        ]
    },
    "computed: age from dob": {"years_between": [{"var": "dob"}, {"today": []}]},
    "computed: table total (20 rows)": {
        "reduce": [
            {"var": "items"},
            {
                "+": [
                    {"var": "accumulator"},
                    {"*": [{"var": "current.qty"}, {"var": "current.price"}]},
                ]
            },
            0,
        ]
    },
}


def main() -> None:
    width = max(len(name) for name in CASES)
    for name, rule in CASES.items():
        runs = 20_000
        seconds = min(
            timeit.repeat(lambda rule=rule: evaluate(rule, RECORD, now=NOW), number=runs, repeat=3)
        )
        print(f"{name:<{width}}  {runs / seconds:>12,.0f} ops/s  {seconds / runs * 1e6:7.2f} µs")


if __name__ == "__main__":
    main()
