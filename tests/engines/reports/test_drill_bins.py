"""The top-N drill-downs of scattered ``bin_width`` bins (pure: the evaluator). "One of the
kept bins" is written as the bin number in a list, ``{"in": [{"bin_of": [var, width]},
[...]]}``, not a range per run of bins (7 operations each: past ~40 scattered kept bins the
record API's 300 operations were passed). This checks, for fractional and whole widths,
that the "Other" row's drill-down selects exactly the records whose bin is not kept (values
on edges as doubles and as decimals, negatives, empty values), that the kept bins' (a
total without the Other) selects the others, and that both stay a few operations."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.engines.forms import FormSpec
from formloom.engines.logic import evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.reports import PivotSpec, ReportTarget, compile_pivot
from formloom.engines.reports.result import _operations, drill

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ITEM = FormSpec.model_validate(
    {"key": "item", "label": "Item", "fields": [{"key": "weight", "type": "number"}]}
)
TABLE = sa.table(
    "records",
    *[sa.column(name) for name in ("id", "app", "form", "deleted_at")],
    sa.column("data", sa.JSON()),
)


def _query(width: float | int, other: bool) -> Any:
    spec = PivotSpec.model_validate(
        {
            "form": "item",
            "rows": [{"field": "weight", "bin_width": width}],
            "measures": [{"key": "n", "op": "count"}],
            "top": {"n": 200, "by": "n", "other": other},
        }
    )
    return compile_pivot(
        spec, {"item": ITEM}, ReportTarget(TABLE, "a"), dialect="sqlite", time_zone="UTC",
        now=NOW,
    )  # fmt: skip


def _records(rng: random.Random, width: float | int, bins: list[int]) -> list[dict[str, Any]]:
    """Values in and beside the bins: on the decimal edge k * width, the double k * width
    (0.1 * 3 is 0.30000000000000004), just inside the next edge, and empty values."""
    exact = Decimal(repr(width))
    records: list[dict[str, Any]] = [{}, {"weight": None}]
    for _ in range(4_000):
        k = rng.choice(bins) + rng.choice([0, 0, 0, -1, 1])
        value = rng.choice(
            [
                float(Decimal(k) * exact),
                k * width,
                float((Decimal(k) + Decimal("0.5")) * exact),
                float((Decimal(k + 1) - Decimal("0.001")) * exact),
            ]
        )
        records.append({"weight": value})
    return records


@pytest.mark.parametrize("width", [0.1, 0.25, 0.3, 1, 2.5])
def test_other_selects_exactly_the_bins_not_kept(width: float | int) -> None:
    rng = random.Random(str(width))
    bins = list(range(-200, 200))  # 400 bins, negatives included
    kept = sorted(rng.sample(bins, 200))  # scattered: ~100 runs, no range merging helps
    wanted = set(kept)
    other = drill(_query(width, True), [None], [], other=True, kept=kept)
    assert other.filter is not None
    assert _operations(other.filter) <= 6  # was ~100 runs of 7 operations
    rolled_up = drill(_query(width, False), [], [], kept=kept)  # the total of the kept bins
    assert rolled_up.filter is not None
    assert _operations(rolled_up.filter) <= 6
    single = drill(_query(width, True), [kept[0]], [], kept=kept)
    assert single.filter is not None
    records = _records(rng, width, bins)
    inside = outside = 0
    for record in records:
        number = evaluate({"bin_of": [record.get("weight"), width]})
        is_kept = number in wanted
        inside += is_kept
        outside += not is_kept
        assert truthy(evaluate(other.filter, record, now=NOW)) == (not is_kept), record
        assert truthy(evaluate(rolled_up.filter, record, now=NOW)) == is_kept, record
        assert truthy(evaluate(single.filter, record, now=NOW)) == (number == kept[0]), record
    assert inside > 1_000 and outside > 1_000  # both sides are really exercised


def test_decimal_edges_are_in_their_bin() -> None:
    """0.3, the double 0.1 + 0.2 and the double 0.7 - 0.4 (below 0.3) are all in bin 3 of
    width 0.1, in the cell's SQL and in its drill-down alike (bin_of), where a range
    [0.3, 0.4) would leave 0.7 - 0.4 out."""
    query = _query(0.1, True)
    keep_three = drill(query, [None], [], other=True, kept=[3, 7, -1])
    for value in (0.3, 0.1 + 0.2, 0.7 - 0.4, 0.7, -0.1, -0.05):
        assert not truthy(evaluate(keep_three.filter, {"weight": value}, now=NOW)), value
    for value in (0.4, 0.29, -0.11, 1e-9, 0.0):
        assert truthy(evaluate(keep_three.filter, {"weight": value}, now=NOW)), value
    assert truthy(evaluate(keep_three.filter, {}, now=NOW))  # the empty group is not kept
