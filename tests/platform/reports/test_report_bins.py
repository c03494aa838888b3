"""Bins of a width put a value where decimal arithmetic does, with the same edges in the
cell, its label and its drill-down, on SQLite and PostgreSQL (issue 20, defects 2 and 3):
0.3 with width 0.1 is in [0.3, 0.4) — not [0.30000000000000004, 0.4) with a drill-down
that finds nothing, nor [0.2, 0.3) — and a value of 3,000,000,000 has its bin (PostgreSQL
cast bin numbers to 32-bit integers and failed the report)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests import factories as f

APP = "binning"
VALUES = [0.3, 0.57, 0.7, 1.0, -0.3, 0.29, 3_000_000_000]


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await client.post(
        "/api/apps/import", json=f.app(APP, f.form("item", f.field("num", "number")))
    )
    assert answer.status_code in (200, 201), answer.text
    for value in VALUES:
        made = await client.post(f"/api/records/{APP}/item", json={"data": {"num": value}})
        assert made.status_code == 201, made.text
    return client


async def _cells(client: httpx.AsyncClient, width: float) -> dict[str, dict[str, Any]]:
    spec = {"form": "item", "rows": [{"field": "num", "bin_width": width}],
            "measures": [{"key": "n", "op": "count"}]}  # fmt: skip
    answer = await client.post(f"/api/reports/{APP}?drill=inline", json=spec)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    return {
        row["labels"][0]: cell for row, [cell] in zip(result["rows"], result["cells"], strict=True)
    }


async def _drilled(client: httpx.AsyncClient, cell: dict[str, Any]) -> int:
    condition = json.dumps(cell["drill_down"]["filter"])
    listed = await client.get(
        f"/api/records/{APP}/item", params={"filter": condition, "count": "true", "limit": 1}
    )
    assert listed.status_code == 200, listed.text
    return int(listed.json()["count"])


async def test_decimal_widths_bin_where_people_expect(installed: httpx.AsyncClient) -> None:
    cells = await _cells(installed, 0.1)
    counts = {label: cell["values"]["n"] for label, cell in cells.items()}
    assert counts["[0.3, 0.4)"] == 1 and counts["[0.2, 0.3)"] == 1  # 0.3 and 0.29
    assert counts["[0.7, 0.8)"] == 1 and counts["[1, 1.1)"] == 1 and counts["[-0.3, -0.2)"] == 1
    assert not [label for label in counts if re.search(r"\.\d{8,}", label)], counts  # no noise
    for label, cell in cells.items():
        assert await _drilled(installed, cell) == cell["values"]["n"], label
    hundredths = await _cells(installed, 0.01)
    assert hundredths["[0.57, 0.58)"]["values"]["n"] == 1
    assert await _drilled(installed, hundredths["[0.57, 0.58)"]) == 1


async def test_a_large_value_has_its_bin(installed: httpx.AsyncClient) -> None:
    cells = await _cells(installed, 1)
    big = cells["[3000000000, 3000000001)"]
    assert big["values"]["n"] == 1
    assert await _drilled(installed, big) == 1
