"""XLSX export beside CSV (GET /api/exports/{app}/{form}?format=xlsx) on SQLite and
PostgreSQL: types kept, formulas neutralised by the CSV's function, the caller's grants."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import httpx
from openpyxl import load_workbook

from tests import factories as f
from tests.conftest import Users

APP = "ward"


def cells(content: bytes) -> list[list[object]]:
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def definition() -> dict[str, object]:
    return f.app(
        APP,
        f.form(
            "visit",
            f.field("patient", required=True),
            f.field("department", required=True),
            f.field("fee", "number"),
            f.field("visits", "integer"),
            f.field("paid", "boolean"),
            f.field("day", "date"),
            f.field("at", "datetime"),
            f.field("phone", "phone"),
        ),
        roles=[{"key": "nurse"}],
        permissions=[
            {
                "form": "visit",
                "roles": ["nurse"],
                "actions": ["read"],
                "row_filter": {"==": [{"var": "department"}, {"var": "$user.department"}]},
                "hidden_fields": ["fee"],
            }
        ],
    )


async def test_xlsx_keeps_types_neutralises_formulas_and_applies_grants(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    rows = [
        {"patient": '=HYPERLINK("http://x","click")', "department": "surgery", "fee": 12.5,
         "visits": 3, "paid": True, "day": "2026-12-04", "at": "2026-12-04T02:00:00Z",
         "phone": "+86 138 0000 0001"},
        {"patient": "@SUM(A1)", "department": "dental", "fee": 7, "visits": 1},
    ]  # fmt: skip
    for data in rows:
        response = await client.post(f"/api/records/{APP}/visit", json={"data": data})
        assert response.status_code == 201, response.text
    url = f"/api/exports/{APP}/visit"
    response = await client.get(url, params={"format": "xlsx", "sort": "patient"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="visit.xlsx"' in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = table[0]
    assert header[:9] == ["ID", "Patient", "Department", "Fee", "Visits", "Paid", "Day",
                          "At (UTC)", "Phone"]  # fmt: skip
    first = dict(zip(header, table[1], strict=True))
    assert first["Patient"] == '\'=HYPERLINK("http://x","click")'
    assert first["Fee"] == 12.5 and first["Visits"] == 3 and first["Paid"] is True
    assert first["Day"] in (datetime(2026, 12, 4), date(2026, 12, 4))
    assert first["At (UTC)"] == datetime(2026, 12, 4, 2, 0)
    assert first["Phone"] == "+86 138 0000 0001"  # a phone number is not a formula
    assert table[2][1] == "'@SUM(A1)"
    for cell in sheet[2]:
        assert cell.data_type != "f"  # no formula cells at all
    # the CSV says the same, with the same neutralising
    csv = (await client.get(url, params={"sort": "patient"})).text
    assert '"\'=HYPERLINK(""http://x"",""click"")"' in csv
    # a nurse gets her department's rows only, without the hidden fee; a filter applies
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "dental"})
    mine = await client.get(url, params={"format": "xlsx"}, headers=nurse.headers)
    table = cells(mine.content)
    assert len(table) == 2 and "Fee" not in table[0] and table[1][1] == "'@SUM(A1)"
    hidden = await client.get(
        url, params={"format": "xlsx", "fields": "fee"}, headers=nurse.headers
    )
    assert hidden.status_code == 400
    only = await client.get(
        url, params={"format": "xlsx", "filter": json.dumps({"==": [{"var": "visits"}, 3]})}
    )
    assert len(cells(only.content)) == 2
    bad = await client.get(url, params={"format": "pdf"})
    assert bad.status_code == 422
    audited = await client.get("/api/audit", params={"action": "record.export", "app": APP})
    formats = [row["detail"]["format"] for row in audited.json()["items"]]
    assert formats.count("xlsx") == 3 and formats.count("csv") == 1
