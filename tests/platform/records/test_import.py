"""Spreadsheet import (POST /api/records/{app}/{form}/import and `formloom records import`)
on SQLite and PostgreSQL: the mapping guessed from labels in either language, cells in the
forms people type them, per-row errors in the dry run, then all-or-nothing or
skip-bad-rows imports, upserts by a unique field."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from formloom.platform import cli
from formloom.platform.settings import Settings, get_settings
from tests import factories as f

APP = "clinic"
BASE = f"/api/records/{APP}/patient"
IMPORT = f"{BASE}/import"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("branch", f.field("name", required=True, label={"en": "Name", "zh-CN": "名称"})),
        f.form(
            "patient",
            f.field("name", required=True, label={"en": "Full name", "zh-CN": "姓名"}),
            f.field("phone", "phone", unique=True, label={"en": "Mobile", "zh-CN": "手机"}),
            f.field("born", "date", label={"en": "Date of birth", "zh-CN": "出生日期"}),
            f.field("visits", "integer", min=0, label={"en": "Visits", "zh-CN": "就诊次数"}),
            f.field(
                "sex",
                "select",
                label={"en": "Sex", "zh-CN": "性别"},
                options=[
                    {"value": "f", "label": {"en": "Female", "zh-CN": "女"}},
                    {"value": "m", "label": {"en": "Male", "zh-CN": "男"}},
                ],
            ),
            f.field("consent", "boolean", label={"en": "SMS consent", "zh-CN": "短信同意"}),
            f.field("branch", "relation", target="branch", label={"en": "Branch", "zh-CN": "分院"}),
        ),
    )


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> dict[str, str]:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids = {}
    for name in ("Pudong", "Xuhui", "Twin", "Twin"):
        response = await client.post(f"/api/records/{APP}/branch", json={"data": {"name": name}})
        ids[name] = response.json()["id"]
    return ids


def workbook(header: list[str], rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


HEADER = ["姓名", "Mobile", "出生日期", "Visits", "性别", "SMS consent", "分院"]
BAD_KINDS = 5


def big_rows(n: int, bad_every: int) -> tuple[list[list[Any]], dict[int, str]]:
    """``n`` rows in the forms people type, every ``bad_every``-th broken in one of five
    ways; the bad rows' numbers in the file (the header is row 1) -> the column at fault."""
    rows: list[list[Any]] = []
    bad: dict[int, str] = {}
    for i in range(n):
        born: Any = ["1980-05-17", "1980/5/17", datetime(1980, 5, 17), 29358, "1980年5月17日"][
            i % 5
        ]
        row: list[Any] = [
            f"Patient {i}",
            13_800_000_000 + i,  # an Excel number: the phone loses nothing
            born,
            str(i % 9),
            ["女", "Male", "f", "男", "FEMALE"][i % 5],
            ["是", "no", True, "yes", "否"][i % 5],
            ["Pudong", "xuhui"][i % 2],
        ]
        if i % bad_every == bad_every - 1:
            kind = (i // bad_every) % BAD_KINDS
            column = ["出生日期", "Visits", "性别", "分院", "分院"][kind]
            row[HEADER.index(column)] = ["1980-02-30", "-3", "unknown", "Nowhere", "Twin"][kind]
            bad[i + 2] = column
        rows.append(row)
    return rows, bad


async def post(client: httpx.AsyncClient, content: bytes, name: str = "patients.xlsx",
               **params: Any) -> httpx.Response:  # fmt: skip
    return await client.post(
        IMPORT,
        params={k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()},
        files={"file": (name, content, XLSX if name.endswith("xlsx") else "text/csv")},
    )


async def count(client: httpx.AsyncClient) -> int:
    return int((await client.get(BASE, params={"count": "true", "limit": 1})).json()["count"])


async def test_5000_rows_with_20_bad_dry_run_then_skip_bad_rows(
    client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    rows, bad = big_rows(5000, 250)
    assert len(bad) == 20
    content = workbook(HEADER, rows)
    dry = await post(client, content)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True
    assert {c["name"]: c["field"] for c in report["columns"]} == {
        "姓名": "name", "Mobile": "phone", "出生日期": "born", "Visits": "visits",
        "性别": "sex", "SMS consent": "consent", "分院": "branch",
    }  # fmt: skip
    assert (report["rows"], report["bad_rows"], report["to_create"]) == (5000, 20, 4980), report[
        "errors"
    ][:3]
    assert {e["row"]: e["column"] for e in report["errors"]} == bad
    codes = {e["code"] for e in report["errors"]}
    assert {"date", "option", "relation", "ambiguous_relation"} <= codes
    assert await count(client) == 0  # a dry run writes nothing
    # all or nothing: refused, nothing written, every bad row named
    strict = await post(client, content, dry_run=False)
    assert strict.status_code == 422
    assert {e["path"] for e in strict.json()["errors"]} == {f"/rows/{n}" for n in bad}
    assert await count(client) == 0
    done = await post(client, content, dry_run=False, skip_bad_rows=True)
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["bad_rows"]) == (4980, 20)
    assert await count(client) == 4980
    first = (await client.get(BASE, params={"filter": json.dumps(
        {"==": [{"var": "name"}, "Patient 0"]})})).json()["items"][0]["data"]  # fmt: skip
    assert first["born"] == "1980-05-17" and first["sex"] == "f" and first["consent"] is True
    assert first["branch"] == clinic["Pudong"] and first["visits"] == 0
    assert first["phone"].replace(" ", "").endswith("13800000000")
    fourth = (await client.get(BASE, params={"filter": json.dumps(
        {"==": [{"var": "name"}, "Patient 3"]})})).json()["items"][0]["data"]  # fmt: skip
    assert fourth["born"] == "1980-05-17" and fourth["branch"] == clinic["Xuhui"]


async def test_csv_with_a_client_mapping_and_upsert(
    client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    first = "Name,Phone,Born,Note\nAnn,13900000001,25/12/1990,x\nBo,13900000002,2/3/1990,y\n"
    dry = await post(client, first.encode(), name="people.csv")
    report = dry.json()
    assert {c["name"]: c["field"] for c in report["columns"]}["Note"] is None
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(3, "ambiguous_date")]
    mapping = json.dumps({"Name": "name", "Phone": "phone", "Born": None, "Note": None})
    done = await client.post(
        IMPORT, params={"dry_run": "false"}, data={"mapping": mapping},
        files={"file": ("people.csv", first.encode(), "text/csv")},
    )  # fmt: skip
    assert done.status_code == 200 and done.json()["created"] == 2
    again = "手机,就诊次数\n13900000001,4\n13900000003,1\n".encode("gb18030")
    upserted = await client.post(
        IMPORT, params={"dry_run": "false", "upsert": "phone"},
        files={"file": ("again.csv", again, "text/csv")},
    )  # fmt: skip
    body = upserted.json()
    assert upserted.status_code == 422  # the new row has no name: all or nothing
    assert [e["field"] for e in body["errors"]] == ["name"]
    upserted = await client.post(
        IMPORT, params={"dry_run": "false", "upsert": "phone", "skip_bad_rows": "true"},
        files={"file": ("again.csv", again, "text/csv")},
    )  # fmt: skip
    assert (upserted.json()["updated"], upserted.json()["created"]) == (1, 0)
    assert await count(client) == 2
    bad_mapping = await client.post(
        IMPORT, data={"mapping": json.dumps({"Name": "nope"})},
        files={"file": ("people.csv", first.encode(), "text/csv")},
    )  # fmt: skip
    assert bad_mapping.status_code == 422
    assert bad_mapping.json()["errors"][0]["path"] == "/mapping/Name"


async def test_too_many_rows_and_unreadable_files(
    client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    lines = "Name\n" + "".join(f"p{i}\n" for i in range(10_001))
    response = await post(client, lines.encode(), name="many.csv")
    assert response.status_code == 422 and "10,000" in response.json()["detail"]
    garbage = await post(client, b"PK\x03\x04 not really a zip", name="x.xlsx")
    assert garbage.status_code == 400 and garbage.json()["errors"][0]["path"] == "/file"
    empty = await post(client, b"", name="x.csv")
    assert empty.status_code == 400


@pytest.fixture
def cli_database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's settings (read from the environment) name the test's database."""
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield settings.database_url
    get_settings.cache_clear()


async def test_the_cli_imports_with_dry_run_and_upsert(
    client: httpx.AsyncClient,
    clinic: dict[str, str],
    cli_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, bad = big_rows(5000, 250)
    path = tmp_path / "patients.xlsx"
    path.write_bytes(workbook(HEADER, rows))

    def run(*args: str) -> int:
        return cli.main(["records", "import", APP, "patient", str(path), *args])

    code = await asyncio.to_thread(run, "--dry-run")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "4980 to create" in out.out and "20 bad rows" in out.out
    for number in bad:
        assert f"row {number}:" in out.out
    assert await count(client) == 0
    code = await asyncio.to_thread(run)
    assert code == 1 and await count(client) == 0  # all or nothing by default
    capsys.readouterr()
    code = await asyncio.to_thread(run, "--skip-bad-rows", "--upsert", "phone")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "4980 created" in out.out
    assert await count(client) == 4980
