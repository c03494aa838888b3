"""The report builder's pages and preview on SQLite and PostgreSQL: the clinic's head office
(a design role) gets the list with edit links, the builder with the report as written and
the forms' fields, and a preview with the report API's numbers, the chart's own measure and
labels, and a KPI's comparison; the preview's errors point into the report; a field hidden
from the caller is refused, never dropped; a branch manager (no design) reads the list with
no edit links and gets 403 from the builder."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import httpx

from formloom import builtin_apps
from tests.conftest import Users

APP = "clinic_crm"
SHIPPED = builtin_apps.load(APP)
NPS = next(r for r in SHIPPED["reports"] if r["key"] == "nps_by_doctor")


def page_data(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="report-builder-data">(.*?)</script>', html, re.S
    )
    assert found is not None
    return dict(json.loads(unescape(found.group(1))))


async def test_designers_build_reports_and_others_read_them(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=SHIPPED)).status_code == 201
    office = await users.create("office_r", roles={APP: ["head_office"]})
    manager = await users.create("manager_r", roles={APP: ["manager"]})

    listed = await client.get(f"/designer/{APP}/reports", headers=office.headers)
    assert listed.status_code == 200
    assert 'data-testid="report-edit-nps_by_doctor"' in listed.text
    assert 'data-testid="reports-new"' in listed.text
    editor = await client.get(f"/designer/{APP}/reports/nps_by_doctor", headers=office.headers)
    assert editor.status_code == 200
    data = page_data(editor.text)
    assert data["report"] == NPS and isinstance(data["revision"], int)
    survey = next(f for f in data["forms"] if f["key"] == "survey")
    doctor = next(f for f in survey["fields"] if f["key"] == "doctor")
    assert doctor["type"] == "relation" and doctor["target"] == "staff"
    assert [s["key"] for s in data["system"]] == [
        "created_at", "updated_at", "created_by", "updated_by"
    ]  # fmt: skip
    assert (
        page_data((await client.get(f"/designer/{APP}/reports/new", headers=office.headers)).text)[
            "report"
        ]
        is None
    )
    missing = await client.get(f"/designer/{APP}/reports/nothing", headers=office.headers)
    assert missing.status_code == 404

    # a branch manager reads the reports of forms they may read, with nothing to edit
    theirs = await client.get(f"/designer/{APP}/reports", headers=manager.headers)
    assert theirs.status_code == 200
    assert 'data-testid="report-table-nps_by_doctor"' in theirs.text
    assert "report-edit-" not in theirs.text and "reports-new" not in theirs.text
    for path in ("nps_by_doctor", "new"):
        page = await client.get(f"/designer/{APP}/reports/{path}", headers=manager.headers)
        assert page.status_code == 403


async def test_the_preview_is_the_report_api_run_with_its_chart(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=SHIPPED)).status_code == 201
    office = await users.create("office_p", roles={APP: ["head_office"]})
    for nps in (10, 9, 3):
        made = await client.post(
            f"/api/records/{APP}/survey", json={"data": {"nps": nps, "satisfaction": 4}}
        )
        assert made.status_code == 201, made.text
    pivot = {k: v for k, v in NPS.items() if k not in ("key", "label", "chart")}
    ran = await client.post(f"/api/reports/{APP}", json=pivot, headers=office.headers)
    assert ran.status_code == 200, ran.text
    # a draft without a key yet previews as well
    draft = {k: v for k, v in NPS.items() if k != "key"}
    shown = await client.post(
        f"/designer/{APP}/reports/preview", json=draft, headers=office.headers
    )
    assert shown.status_code == 200, shown.text
    answer = shown.json()
    assert answer["result"] == ran.json()["result"]
    assert answer["svg"].startswith("<svg") and ">NPS<" in answer["svg"]
    assert answer["table"].startswith('<table class="fl-pivot">')
    assert "<caption>NPS by doctor</caption>" in answer["table"]
    assert answer["previous"] is None

    # in Chinese: the caption and the axis label in the reader's language
    chinese = await client.post(
        f"/designer/{APP}/reports/preview?lang=zh-CN", json=draft, headers=office.headers
    )
    assert "各医生净推荐值" in chinese.json()["table"] and "净推荐值" in chinese.json()["svg"]

    # a KPI is this period so far against the same days of the previous one
    kpi = next(r for r in SHIPPED["reports"] if r["key"] == "nps_overall")
    shown = await client.post(f"/designer/{APP}/reports/preview", json=kpi, headers=office.headers)
    assert shown.status_code == 200, shown.text
    saved = await client.get(f"/api/reports/{APP}/nps_overall", headers=office.headers)
    assert shown.json()["result"] == saved.json()["result"]
    assert shown.json()["previous"] == saved.json().get("previous")
    assert shown.json()["result"]["row_dimensions"] == []


async def test_preview_problems_point_into_the_report(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=SHIPPED)).status_code == 201
    office = await users.create("office_e", roles={APP: ["head_office"]})

    async def problems(report: dict[str, Any]) -> list[str]:
        answer = await client.post(
            f"/designer/{APP}/reports/preview", json=report, headers=office.headers
        )
        assert answer.status_code == 422, answer.text
        return [error["path"] for error in answer.json()["errors"]]

    broken = json.loads(json.dumps(NPS))
    broken["rows"][0]["field"] = "nobody"
    assert await problems(broken) == ["/rows/0/field"]
    broken = json.loads(json.dumps(NPS))
    broken["chart"]["measure"] = "missing"
    assert await problems(broken) == ["/chart/measure"]
    broken = json.loads(json.dumps(NPS))
    broken["measures"][3]["numerator"] = ""
    assert "/measures/3/numerator" in await problems(broken)
    assert await problems({**NPS, "measures": [{"key": "n", "op": "tally"}]}) == ["/measures/0/op"]
    assert await problems([NPS]) == [""]


async def test_a_hidden_field_is_refused_in_the_preview(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=SHIPPED)).status_code == 201
    office = await users.create("office_h", roles={APP: ["head_office"]})
    staff = SHIPPED["forms"][[f["key"] for f in SHIPPED["forms"]].index("staff")]
    hidden = next(
        p["hidden_fields"][0]
        for p in SHIPPED["permissions"]
        if p["form"] == "staff" and p.get("hidden_fields")
    )
    assert hidden in [f["key"] for f in staff["fields"]]
    doctor = await users.create("doctor_h", roles={APP: ["doctor"]})
    report = {
        "label": "Staff by a hidden field",
        "form": "staff",
        "rows": [{"field": hidden}],
        "measures": [{"key": "n", "op": "count"}],
    }
    answer = await client.post(
        f"/designer/{APP}/reports/preview", json=report, headers=doctor.headers
    )
    assert answer.status_code == 403, answer.text
    assert [e["path"] for e in answer.json()["errors"]] == ["/rows/0/field"]
    mine = await client.post(
        f"/designer/{APP}/reports/preview", json=report, headers=office.headers
    )
    assert mine.status_code == 200, mine.text
