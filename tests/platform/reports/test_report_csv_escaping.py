"""A report's CSV cannot carry a formula into the spreadsheet that opens it (issue 20,
defect 1), on SQLite and PostgreSQL: a text value used as a row label, an option label used
as a column and a header made of such a label and a measure all start with ``'`` when they
would start a formula; numbers and phone-like text stay as they are. The record export and
the report CSV share one escaping function (engines/reports/cells.py)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from formloom.engines.reports.cells import cell_text
from tests import factories as f

APP = "escapes"


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    document = f.app(
        APP,
        f.form(
            "item",
            f.field("kind"),
            f.field("color", "select", options=[{"value": "green", "label": "+green"},
                                                {"value": "sum", "label": "=1+2"}]),
            f.field("note"),
            f.field("n", "integer"),
        ),
    )  # fmt: skip
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for kind, color, note in [('=HYPERLINK("http://x")', "green", "@SUM(A1)"),
                              ("-3", "sum", "+86 10 5555 1000")]:  # fmt: skip
        made = await client.post(
            f"/api/records/{APP}/item",
            json={"data": {"kind": kind, "color": color, "note": note, "n": 1}},
        )
        assert made.status_code == 201, made.text
    return client


async def test_a_report_csv_starts_no_formula(installed: httpx.AsyncClient) -> None:
    spec = {
        "form": "item",
        "rows": [{"field": "kind"}],
        "columns": [{"field": "color"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "total", "op": "sum", "field": "n"}],
    }
    answer = await installed.post(f"/api/reports/{APP}", params={"format": "csv"}, json=spec)
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "@") or c.startswith("+green")], rows
    assert "'+green · n" in rows[0] and "'=1+2 · total" in rows[0]
    labels = [row[0] for row in rows[1:]]
    assert """'=HYPERLINK("http://x")""" in labels and "-3" in labels  # a number stays


async def test_the_record_export_escapes_the_same_way(installed: httpx.AsyncClient) -> None:
    answer = await installed.get(f"/api/exports/{APP}/item")
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert """'=HYPERLINK("http://x")""" in cells and "'@SUM(A1)" in cells
    assert "+86 10 5555 1000" in cells and "-3" in cells


@pytest.mark.parametrize(
    ("text", "shown"),
    [("=1+2", "'=1+2"), ("+green", "'+green"), ("-x", "'-x"), ("@a", "'@a"),
     ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-3.5", "-3.5"),
     ("+86 (10) 5555-1000", "+86 (10) 5555-1000"), ("plain", "plain"), ("", "")],
)  # fmt: skip
def test_cell_text(text: str, shown: str) -> None:
    assert cell_text(text) == shown
