"""Missing periods filled (issue 20, "what managers ask for"): a month, week, day, quarter or
year bucket with ``fill`` shows the empty periods between the first and the last with
records, counts 0, so a line chart does not skip them — on SQLite and PostgreSQL alike, with
drill-downs that find nothing in an empty period; and the spec says where fill cannot go."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f

APP = "filling"
DAYS = ["2026-01-15", "2026-01-20", "2026-04-02", "2026-04-30", "2027-02-01"]


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    document = f.app(APP, f.form("visit", f.field("day", "date"), f.field("score", "integer")))
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for n, day in enumerate(DAYS):
        made = await client.post(
            f"/api/records/{APP}/visit", json={"data": {"day": day, "score": n}}
        )
        assert made.status_code == 201, made.text
    return client


async def _pivot(client: httpx.AsyncClient, **parts: Any) -> dict[str, Any]:
    spec = {"form": "visit", "measures": [{"key": "n", "op": "count"},
            {"key": "s", "op": "sum", "field": "score"}], **parts}  # fmt: skip
    answer = await client.post(f"/api/reports/{APP}?drill=inline", json=spec)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["result"])


@pytest.mark.parametrize(
    ("bucket", "first", "last", "count"),
    [
        ("month", "2026-01", "2027-02", 14),
        ("quarter", "2026-Q1", "2027-Q1", 5),
        ("year", "2026", "2027", 2),
        ("week", "2026-01-12", "2027-02-01", 56),
        ("day", "2026-01-15", "2027-02-01", 383),
    ],
)
async def test_every_period_between_the_first_and_the_last(
    installed: httpx.AsyncClient, bucket: str, first: str, last: str, count: int
) -> None:
    result = await _pivot(installed, rows=[{"field": "day", "bucket": bucket, "fill": True}])
    keys = [row["keys"][0] for row in result["rows"]]
    assert (keys[0], keys[-1], len(keys)) == (first, last, count)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    counts = [cells[0]["values"]["n"] for cells in result["cells"]]
    assert sum(counts) == len(DAYS)
    plain = await _pivot(installed, rows=[{"field": "day", "bucket": bucket}])
    filled = {k: c[0]["values"] for k, c in zip(keys, result["cells"], strict=True)}
    for row, cells in zip(plain["rows"], plain["cells"], strict=True):
        assert filled[row["keys"][0]] == cells[0]["values"]  # the periods with records: as before
    empty = [k for k, v in filled.items() if v["n"] == 0]
    assert all(filled[k]["s"] is None for k in empty)
    if empty:  # an empty period drills down to nothing
        index = keys.index(empty[0])
        drill = result["cells"][index][0]["drill_down"]
        listed = await installed.post(
            f"/api/records/{APP}/visit/query", json={"filter": drill["filter"], "count": True}
        )
        assert listed.json()["count"] == 0


async def test_filled_columns_and_where_fill_cannot_go(installed: httpx.AsyncClient) -> None:
    result = await _pivot(installed, columns=[{"field": "day", "bucket": "quarter", "fill": True}])
    assert [c["keys"][0] for c in result["columns"]] == [
        "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1",
    ]  # fmt: skip
    refusals = {
        "fill_needs_period": {"rows": [{"field": "day", "bucket": "weekday", "fill": True}]},
        "fill_needs_single_dimension": {
            "rows": [{"field": "day", "bucket": "month", "fill": True}, {"field": "score"}]
        },
        "fill_with_top": {
            "rows": [{"field": "day", "bucket": "month", "fill": True}],
            "top": {"n": 2, "by": "n"},
        },
    }
    for code, parts in refusals.items():
        spec = {"form": "visit", "measures": [{"key": "n", "op": "count"}], **parts}
        answer = await installed.post(f"/api/reports/{APP}", json=spec)
        assert answer.status_code == 422, answer.text
        assert (answer.json()["errors"][0]["path"], answer.json()["errors"][0]["code"]) == (
            "/rows/0/fill",
            code,
        )
