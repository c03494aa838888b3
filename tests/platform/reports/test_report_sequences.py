"""Running totals and ranks (issue 20, "what managers ask for"): computed down each column in
the rows' order — subtotal rows left out, totals the run's end — equal to pandas' cumsum and
rank(method="min", ascending=False) over the same cells, on SQLite and PostgreSQL; and the
spec refuses what cannot be read down the rows."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import pytest

from tests import factories as f

APP = "sequences"
ROWS = [
    ("2026-01-05", "a", 3), ("2026-01-20", "b", 5), ("2026-02-03", "a", 1),
    ("2026-03-09", "b", 5), ("2026-03-10", "a", None), ("2026-05-01", "b", 2),
    ("2026-05-02", "a", 7),
]  # fmt: skip


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    document = f.app(
        APP,
        f.form(
            "visit",
            f.field("day", "date"),
            f.field("team", "select", options=[{"value": "a"}, {"value": "b"}]),
            f.field("score", "integer"),
        ),
    )
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for day, team, score in ROWS:
        data: dict[str, Any] = {"day": day, "team": team}
        if score is not None:
            data["score"] = score
        made = await client.post(f"/api/records/{APP}/visit", json={"data": data})
        assert made.status_code == 201, made.text
    return client


MEASURES = [
    {"key": "s", "op": "sum", "field": "score"},
    {"key": "n", "op": "count"},
    {"key": "run", "op": "running_total", "of": "s"},
    {"key": "place", "op": "rank", "of": "n"},
]


@pytest.mark.parametrize("fill", [False, True])
async def test_running_totals_and_ranks_down_each_column(
    installed: httpx.AsyncClient, fill: bool
) -> None:
    spec = {
        "form": "visit",
        "rows": [{"field": "day", "bucket": "month", "fill": fill}],
        "columns": [{"field": "team"}],
        "measures": MEASURES,
        "totals": True,
    }
    answer = await installed.post(f"/api/reports/{APP}", json=spec)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    columns = [*zip(*result["cells"], strict=True), result["row_totals"]]
    for column in columns:
        values = pd.DataFrame([cell["values"] for cell in column])
        assert list(values["run"]) == list(values["s"].fillna(0).cumsum())
        ranked = values["n"].rank(method="min", ascending=False)
        assert [int(r) for r in ranked] == list(values["place"])
    for total in [*result["column_totals"], result["grand_total"]]:
        assert total["values"]["run"] == total["values"]["s"]
        assert total["values"]["place"] is None


async def test_subtotal_rows_are_not_part_of_the_run(installed: httpx.AsyncClient) -> None:
    spec = {
        "form": "visit",
        "rows": [{"field": "team"}, {"field": "day", "bucket": "month"}],
        "measures": MEASURES,
        "subtotals": True,
    }
    result = (await installed.post(f"/api/reports/{APP}", json=spec)).json()["result"]
    data = [c[0]["values"] for c, row in zip(result["cells"], result["rows"], strict=True)
            if not row["subtotal"]]  # fmt: skip
    subtotals = [c[0]["values"] for c, row in zip(result["cells"], result["rows"], strict=True)
                 if row["subtotal"]]  # fmt: skip
    assert subtotals and all(v["run"] is None and v["place"] is None for v in subtotals)
    assert [v["run"] for v in data] == list(pd.Series([v["s"] or 0 for v in data]).cumsum())


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        ({"sort": {"by": "run"}}, "/sort/by"),
        (
            {
                "measures": [
                    *MEASURES,
                    {"key": "r", "op": "ratio", "numerator": "run", "denominator": "n"},
                ]
            },
            "/measures/4/numerator",
        ),  # fmt: skip
        ({"measures": [{"key": "run", "op": "running_total", "of": "nope"}]}, "/measures/0/of"),
        (
            {
                "measures": [
                    {"key": "n", "op": "count"},
                    {"key": "m", "op": "moving_average", "of": "n"},
                ]
            },
            "/measures/1/window",
        ),  # fmt: skip
        (
            {"measures": [{"key": "n", "op": "count", "window": 3}]},
            "/measures/0/window",
        ),  # fmt: skip
        (
            {
                "measures": [
                    {"key": "n", "op": "count"},
                    {"key": "c", "op": "cumulative_percent", "of": "n"},
                ],
                "sort": {"by": "c"},
            },
            "/sort/by",
        ),  # fmt: skip
    ],
)
async def test_what_cannot_be_read_down_the_rows_is_refused(
    installed: httpx.AsyncClient, parts: dict[str, Any], path: str
) -> None:
    spec = {"form": "visit", "rows": [{"field": "team"}], "measures": MEASURES, **parts}
    answer = await installed.post(f"/api/reports/{APP}", json=spec)
    assert answer.status_code == 422, answer.text
    assert path in [e["path"] for e in answer.json()["errors"]]
