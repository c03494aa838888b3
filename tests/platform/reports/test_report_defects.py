"""Issue 20, defect 5, over HTTP on SQLite and PostgreSQL: a sum of very large integers,
subtotal rows against max_cells, where "Other" sorts, sorting by label, and a stored
"(empty)" or "Other" told apart from the empty group and top-N's rest."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from formloom.platform.settings import Settings
from tests import factories as f

APP = "shop"


async def _install(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    document = f.app(
        APP,
        f.form(
            "item",
            f.field("code"),
            f.field("n", "integer"),
            f.field("note"),
            f.field(
                "kind",
                "select",
                options=[
                    {"value": "a", "label": {"en": "Zebra"}},
                    {"value": "b", "label": {"en": "Apple"}},
                    {"value": "c", "label": {"en": "Mango"}},
                ],
            ),
        ),
    )
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for data in items:
        made = await client.post(f"/api/records/{APP}/item", json={"data": data})
        assert made.status_code == 201, made.text


async def _run(client: httpx.AsyncClient, spec: dict[str, Any], **params: str) -> Any:
    return await client.post(f"/api/reports/{APP}", json={"form": "item", **spec}, params=params)


async def test_a_sum_of_very_large_integers_is_a_number(client: httpx.AsyncClient) -> None:
    """Two integers of 9e18: SQLite's sum() overflowed and the report blamed bin widths."""
    await _install(client, [{"n": 9_000_000_000_000_000_000}, {"n": 9_000_000_000_000_000_000}])
    answer = await _run(client, {"measures": [{"key": "s", "op": "sum", "field": "n"}]})
    assert answer.status_code == 200, answer.text
    total = answer.json()["result"]["cells"][0][0]["values"]["s"]
    assert total == 18_000_000_000_000_000_000
    # a group with no value sums to nothing, not 0
    empty = await _run(
        client,
        {"measures": [{"key": "s", "op": "sum", "field": "n"}], "filter": {"==": [1, 0]}},
    )
    assert empty.json()["result"]["cells"][0][0]["values"]["s"] is None


async def test_subtotal_rows_count_against_max_cells(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await _install(client, [{"code": c, "kind": k} for c in ("x", "y", "z") for k in ("a", "b")])
    spec = {
        "rows": [{"field": "code"}, {"field": "kind"}],
        "measures": [{"key": "n", "op": "count"}],
        "subtotals": True,
    }
    settings.report_max_cells = 6  # 6 rows of data, 9 with the subtotal rows
    refused = await _run(client, spec)
    assert refused.status_code == 422, refused.text
    assert "9 cells" in refused.json()["detail"]
    settings.report_max_cells = 9
    assert (await _run(client, spec)).status_code == 200


async def test_other_sorts_last_and_labels_sort_as_read(client: httpx.AsyncClient) -> None:
    items = [{"code": "a", "kind": "a"}] * 5 + [{"code": "b", "kind": "b"}] * 4
    items += [{"code": f"r{i}", "kind": "c"} for i in range(6)]  # the rest: 6, most of all
    await _install(client, items)
    spec = {
        "rows": [{"field": "code"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 2, "by": "n"},
        "sort": {"by": "n", "direction": "desc"},
    }
    rows = (await _run(client, spec)).json()["result"]["rows"]
    assert [r["keys"][0] for r in rows[:2]] == ["a", "b"] and rows[-1]["other"]
    by_label = {"rows": [{"field": "kind"}], "measures": [{"key": "n", "op": "count"}]}
    orders = {"asc": ["Apple", "Mango", "Zebra"], "desc": ["Zebra", "Mango", "Apple"]}
    for direction, expected in orders.items():
        answer = await _run(client, {**by_label, "sort": {"by": "label", "direction": direction}})
        assert [r["labels"][0] for r in answer.json()["result"]["rows"]] == expected


async def test_a_stored_empty_or_other_is_not_the_group(client: httpx.AsyncClient) -> None:
    await _install(client, [{"note": "(empty)"}, {"note": "Other"}, {"code": "no note"}])
    spec = {"rows": [{"field": "note"}], "measures": [{"key": "n", "op": "count"}]}
    result = (await _run(client, spec)).json()["result"]
    labels = [r["labels"][0] for r in result["rows"]]
    assert "(empty)" in labels  # the record without a note
    assert "\u201c(empty)\u201d" in labels and "\u201cOther\u201d" in labels
    assert len(set(labels)) == 3
    table = (await _run(client, spec, format="csv")).content.decode("utf-8-sig")
    names = [line[0] for line in csv.reader(io.StringIO(table))][1:]
    assert len(set(names)) == len(names)


async def test_a_relation_dimension_sorts_by_the_titles_it_shows(
    client: httpx.AsyncClient,
) -> None:
    """Doctors' ids sort one way, their names another: rows follow the names the reader
    sees (the id stays the key), both directions."""
    document = f.app(
        APP,
        f.form("doctor", f.field("name"), title_field="name"),
        f.form("visit", f.field("doctor", "relation", target="doctor")),
    )
    assert (await client.post("/api/apps/import", json=document)).status_code in (200, 201)
    ids = {}
    for name in ("Zhao", "Adams", "Meng"):
        made = await client.post(f"/api/records/{APP}/doctor", json={"data": {"name": name}})
        ids[name] = made.json()["id"]
    for name in ("Zhao", "Adams", "Meng", "Zhao"):
        data = {"doctor": ids[name]}
        assert (await client.post(f"/api/records/{APP}/visit", json={"data": data})).is_success
    spec = {
        "form": "visit",
        "rows": [{"field": "doctor"}],
        "measures": [{"key": "n", "op": "count"}],
    }
    orders = {"asc": ["Adams", "Meng", "Zhao"], "desc": ["Zhao", "Meng", "Adams"]}
    for direction, names in orders.items():
        answer = await client.post(
            f"/api/reports/{APP}", json={**spec, "sort": {"by": "label", "direction": direction}}
        )
        rows = answer.json()["result"]["rows"]
        assert [r["labels"][0] for r in rows] == names
        assert [r["keys"][0] for r in rows] == [ids[n] for n in names]
