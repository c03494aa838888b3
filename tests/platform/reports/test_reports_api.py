"""Reports over HTTP: saved and ad hoc, every output format, permissions, dashboards,
drill-down, and bad specs — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users

APP = "ward"
SAME_DEPARTMENT = {"==": [{"var": "department"}, {"var": "$user.department"}]}
BY_DEPARTMENT = {
    "form": "visit",
    "rows": [{"field": "department"}],
    "columns": [{"field": "kind"}],
    "measures": [
        {"key": "visits", "op": "count"},
        {"key": "fees", "op": "sum", "field": "fee"},
    ],
}


def definition(**changes: Any) -> dict[str, Any]:
    document = f.app(
        APP,
        f.form(
            "visit",
            f.field("department", required=True),
            f.field("kind", "select", options=[{"value": "first"}, {"value": "repeat"}]),
            f.field("fee", "number"),
            f.field("secret_score", "integer"),
            f.field("day", "date"),
            f.field("seen_at", "datetime"),
        ),
        roles=[{"key": "nurse"}, {"key": "clerk"}],
        permissions=[
            {
                "form": "visit",
                "roles": ["nurse"],
                "actions": ["read"],
                "row_filter": SAME_DEPARTMENT,
                "hidden_fields": ["secret_score"],
            }
        ],
        reports=[
            {"key": "by_department", "label": "Visits by department", **BY_DEPARTMENT,
             "chart": {"type": "stacked_bar", "measure": "visits"}},
            {"key": "fees_kpi", "label": "Fees this month", "form": "visit",
             "measures": [{"key": "fees", "op": "sum", "field": "fee"}],
             "chart": {"type": "kpi", "period_field": "day", "period": "month"}},
        ],
        dashboards=[
            {"key": "board", "label": "Board",
             "filters": [{"key": "period", "type": "date_range", "field": "day"},
                         {"key": "department", "type": "select", "field": "department"}],
             "items": [{"report": "by_department"}, {"report": "fees_kpi", "width": 4}]}
        ],
    )  # fmt: skip
    document.update(changes)
    return document


VISITS = [
    ("surgery", "first", 100, "2026-11-02"),
    ("surgery", "repeat", 50, "2026-11-20"),
    ("surgery", "first", 25, "2026-10-15"),
    ("dental", "first", 80, "2026-11-05"),
    ("dental", "repeat", 20, "2026-10-01"),
]


@pytest.fixture
async def ward(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    for department, kind, fee, day in VISITS:
        data = {"department": department, "kind": kind, "fee": fee, "day": day, "secret_score": 9}
        assert (
            await client.post(f"/api/records/{APP}/visit", json={"data": data})
        ).status_code == 201


def cells(body: dict[str, Any], measure: str) -> dict[tuple[str, str], Any]:
    result = body["result"]
    return {
        (row["labels"][0], column["labels"][0]): result["cells"][r][c]["values"][measure]
        for r, row in enumerate(result["rows"])
        for c, column in enumerate(result["columns"])
    }


async def test_a_saved_report_as_json(client: httpx.AsyncClient, ward: None) -> None:
    body = (await client.get(f"/api/reports/{APP}/by_department")).json()
    assert body["label"] == "Visits by department"
    visits = cells(body, "visits")
    assert visits[("surgery", "first")] == 2 and visits[("dental", "repeat")] == 1
    assert cells(body, "fees")[("surgery", "first")] == 125
    assert body["result"]["grand_total"]["values"] == {"visits": 5, "fees": 275}


async def test_csv_html_and_svg(client: httpx.AsyncClient, ward: None) -> None:
    url = f"/api/reports/{APP}/by_department"
    as_csv = await client.get(url, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0][0].lower() == "department" and rows[-1][0] == "Total"
    html = await client.get(url, params={"format": "html"})
    assert html.text.startswith('<table class="fl-pivot">') and "data-drill" not in html.text
    html = await client.get(url, params={"format": "html", "drill": "inline"})
    assert html.text.startswith('<table class="fl-pivot">') and "data-drill" in html.text
    svg = await client.get(url, params={"format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(svg.text)
    assert root.get("role") == "img" and "fl-chart-stacked_bar" in root.get("class", "")
    line = await client.get(url, params={"format": "svg", "chart": "line"})
    assert "fl-chart-line" in line.text
    bad = await client.get(url, params={"format": "svg", "chart": "radar"})
    assert bad.status_code == 422


async def test_kpi_compares_this_month_with_the_last(client: httpx.AsyncClient, ward: None) -> None:
    body = (await client.get(f"/api/reports/{APP}/fees_kpi")).json()
    assert body["result"]["grand_total"]["values"]["fees"] == 230  # November (clock: 23 Nov)
    assert body["previous"] == 45  # October
    svg = (await client.get(f"/api/reports/{APP}/fees_kpi", params={"format": "svg"})).text
    assert "▲" in svg and ">230<" in svg


async def test_a_report_runs_within_the_callers_rows(
    client: httpx.AsyncClient, users: Users, ward: None
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    mine = (await client.get(f"/api/reports/{APP}/by_department", headers=nurse.headers)).json()
    assert [row["labels"] for row in mine["result"]["rows"]] == [["surgery"]]
    assert mine["result"]["grand_total"]["values"] == {"visits": 3, "fees": 175}
    # the same as the admin asking for surgery explicitly
    explicit = await client.post(
        f"/api/reports/{APP}",
        json={**BY_DEPARTMENT, "filter": {"==": [{"var": "department"}, "surgery"]}},
    )
    totals = explicit.json()["result"]["grand_total"]["values"]
    assert totals == mine["result"]["grand_total"]["values"]


async def test_hidden_fields_are_an_error_not_a_silent_drop(
    client: httpx.AsyncClient, users: Users, ward: None
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    for spec, pointer in [
        (
            {**BY_DEPARTMENT, "measures": [{"key": "s", "op": "avg", "field": "secret_score"}]},
            "/measures/0/field",
        ),
        ({**BY_DEPARTMENT, "rows": [{"field": "secret_score"}]}, "/rows/0/field"),
        ({**BY_DEPARTMENT, "filter": {">": [{"var": "secret_score"}, 5]}}, "/filter"),
    ]:
        response = await client.post(f"/api/reports/{APP}", json=spec, headers=nurse.headers)
        assert response.status_code == 403, response.text
        assert response.json()["errors"][0]["path"] == pointer
        assert "9" not in response.json()["detail"]
    # the admin may
    spec = {**BY_DEPARTMENT, "measures": [{"key": "s", "op": "avg", "field": "secret_score"}]}
    assert (await client.post(f"/api/reports/{APP}", json=spec)).status_code == 200


async def test_who_may_run_reports(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, users: Users, ward: None
) -> None:
    clerk = await users.create("carl", roles={APP: ["clerk"]})  # no grant on visit
    response = await client.get(f"/api/reports/{APP}/by_department", headers=clerk.headers)
    assert response.status_code == 403
    listed = (await client.get(f"/api/reports/{APP}", headers=clerk.headers)).json()
    assert listed["reports"] == []
    assert (await anon_client.get(f"/api/reports/{APP}/by_department")).status_code == 401
    assert (await client.get(f"/api/reports/{APP}/nope")).status_code == 404


SUM_TEXT = {"key": "s", "op": "sum", "field": "department"}
BUCKET_TEXT = {"field": "department", "bucket": "month"}
MANY = [{"key": f"m{i}", "op": "count"} for i in range(2_000)]


@pytest.mark.parametrize(
    ("spec", "pointer", "code"),
    [
        ({**BY_DEPARTMENT, "rows": [{"field": "departmnet"}]}, "/rows/0/field", "unknown_field"),
        ({**BY_DEPARTMENT, "measures": [SUM_TEXT]}, "/measures/0/field", "not_numeric"),
        ({**BY_DEPARTMENT, "rows": [BUCKET_TEXT]}, "/rows/0/bucket", None),
        ({**BY_DEPARTMENT, "rows": [{"field": "department.name"}]}, "/rows/0/field", None),
        ({**BY_DEPARTMENT, "measures": MANY}, "/measures", "too_many_measures"),
        ({**BY_DEPARTMENT, "filter": {"map": [{"var": "fee"}, 1]}}, "/filter", None),
        ({**BY_DEPARTMENT, "colour": "red"}, "/colour", None),
        ({"rows": []}, "/form", None),
    ],
)  # fmt: skip
async def test_bad_ad_hoc_specs_are_422_with_a_pointer(
    client: httpx.AsyncClient, ward: None, spec: dict[str, Any], pointer: str, code: str | None
) -> None:
    response = await client.post(f"/api/reports/{APP}", json=spec)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["path"].startswith(pointer), error
    if code:
        assert error["code"] == code


async def test_saved_reports_are_checked_at_import(client: httpx.AsyncClient) -> None:
    document = definition()
    document["reports"][0]["rows"] = [{"field": "nope"}]
    document["dashboards"][0]["items"].append({"report": "ghost"})
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["errors"]]
    assert paths == ["/reports/0/rows/0/field", "/dashboards/0/items/2/report"]
    assert (await client.get(f"/api/apps/{APP}")).status_code == 404  # nothing installed


async def test_too_many_cells_is_refused(
    client: httpx.AsyncClient, ward: None, settings: Settings
) -> None:
    url = f"/api/reports/{APP}/by_department"  # 2 departments x 2 kinds = 4 cells
    assert (await client.get(url)).status_code == 200
    settings.report_max_cells = 3  # the running service reads the same settings
    refused = await client.get(url)
    assert refused.status_code == 422
    assert "cells" in refused.json()["detail"]


async def test_dashboard_with_shared_filters(client: httpx.AsyncClient, ward: None) -> None:
    whole = (await client.get(f"/api/dashboards/{APP}/board")).json()
    assert [item["report"] for item in whole["items"]] == ["by_department", "fees_kpi"]
    assert whole["items"][0]["result"]["grand_total"]["values"]["visits"] == 5
    assert whole["items"][0]["svg"].startswith("<svg")
    november = (
        await client.get(
            f"/api/dashboards/{APP}/board",
            params={
                "period_from": "2026-11-01",
                "period_to": "2026-12-01",
                "department": "surgery",
            },
        )
    ).json()
    assert november["items"][0]["result"]["grand_total"]["values"] == {"visits": 2, "fees": 150}


async def test_every_cell_drills_down_to_its_records(client: httpx.AsyncClient, ward: None) -> None:
    """The cells carry their values only; their coordinates (the headers' keys) give the
    drill-down on demand, the same one ``drill=inline`` writes into every cell."""
    url = f"/api/reports/{APP}/by_department"
    body = (await client.get(url)).json()
    result = body["result"]
    inline = (await client.get(url, params={"drill": "inline"})).json()["result"]
    for r, row in enumerate(result["rows"]):
        for c, column in enumerate(result["columns"]):
            cell = result["cells"][r][c]
            assert "drill_down" not in cell
            params = {"row": json.dumps(row["keys"]), "column": json.dumps(column["keys"])}
            answer = await client.get(f"{url}/drill", params=params)
            assert answer.status_code == 200, answer.text
            drill = answer.json()
            assert drill["href"].startswith(f"/apps/{APP}/records/visit?drill=")
            assert {k: v for k, v in drill.items() if k != "href"} == inline["cells"][r][c][
                "drill_down"
            ]
            assert drill["form"] == "visit" and drill["related"] == []
            listed = await client.post(
                f"/api/records/{APP}/visit/query", json={"filter": drill["filter"], "count": True}
            )
            assert listed.json()["count"] == (cell["values"]["visits"] or 0), (row, drill)


async def test_hour_and_weekday_cells_drill_down_through_a_link(client: httpx.AsyncClient) -> None:
    """An hour or weekday bucket is no range of time; over a year of records its drill-down
    is still one short condition (hour_of / weekday_of in the report's zone) that the
    record list takes in its URL."""
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    first = datetime(2025, 11, 1, tzinfo=UTC)
    for i in range(90):  # a year, every hour of the day and every weekday
        seen = first + timedelta(days=4 * i, hours=5 * i, minutes=17 * i)
        data = {"department": "surgery", "seen_at": seen.strftime("%Y-%m-%dT%H:%M:%SZ")}
        response = await client.post(f"/api/records/{APP}/visit", json={"data": data})
        assert response.status_code == 201
    data = {"department": "dental"}  # no time: the (empty) row and column
    assert (await client.post(f"/api/records/{APP}/visit", json={"data": data})).status_code == 201
    spec = {
        "form": "visit",
        "rows": [{"field": "seen_at", "bucket": "hour"}],
        "columns": [{"field": "seen_at", "bucket": "weekday"}],
        "measures": [{"key": "visits", "op": "count"}],
        "totals": True,
    }
    answer = await client.post(f"/api/reports/{APP}", params={"drill": "inline"}, json=spec)
    result = answer.json()["result"]
    assert len(result["rows"]) == 25 and len(result["columns"]) == 8  # 0-23 and 1-7, (empty)
    cells = [c for row in result["cells"] for c in row]
    cells += [*result["row_totals"], *result["column_totals"], result["grand_total"]]
    assert sum(c["values"]["visits"] or 0 for c in cells) == 4 * 91
    for cell in cells:
        condition = json.dumps(cell["drill_down"]["filter"])
        assert len(condition) < 300, condition
        listed = await client.get(
            f"/api/records/{APP}/visit", params={"filter": condition, "count": "true", "limit": 1}
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["count"] == (cell["values"]["visits"] or 0), condition


async def test_the_clinic_dashboard_over_demo_data(settings: Settings) -> None:
    """Every report of the clinic CRM runs over the demo data and draws a chart; NPS is by
    doctor name (relation headers show the related record's title)."""
    from formloom.platform.api import create_app
    from formloom.platform.auth import service as auth
    from formloom.platform.clock import SystemClock
    from formloom.platform.demo import install_demo

    app = create_app(settings, clock=SystemClock("Asia/Shanghai"))
    async with app.router.lifespan_context(app):
        state = app.state.platform
        await install_demo(state, patients=25)
        async with state.db.transaction() as session:
            admin = await auth.get_user(session, "admin")
            issued = await auth.issue(
                session,
                admin,
                "bearer",
                now=state.clock.now(),
                lifetime=auth.lifetime_of("bearer", settings),
            )
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {issued.wire}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            board = (await c.get("/api/dashboards/clinic_crm/manager")).json()
            assert len(board["items"]) == 14  # incl. NPS this month, complaints: time to close
            for item in board["items"]:
                assert "error" not in item, item
                ET.fromstring(item["svg"])
            nps = next(i for i in board["items"] if i["report"] == "nps_by_doctor")
            labels = [row["labels"][0] for row in nps["result"]["rows"]]
            assert labels and all(label.startswith("Dr. ") for label in labels)
            # the demo closed one complaint (its flow played to the end): a time to close
            closing = next(i for i in board["items"] if i["report"] == "complaint_time_to_close")
            assert closing["result"]["grand_total"]["values"]["closed"] == 1
            assert closing["result"]["grand_total"]["values"]["max_hours"] > 0
            completion = next(i for i in board["items"] if i["report"] == "follow_up_completion")
            rate = completion["result"]["grand_total"]["values"]["rate"]
            assert 0 < rate <= 100
            busy = next(i for i in board["items"] if i["report"] == "appointments_by_hour")
            result = busy["result"]
            assert result["grand_total"]["values"]["appointments"] > 0
            assert {c["labels"][0] for c in result["columns"]} <= {
                "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
            }  # fmt: skip
            for row, cells in zip(result["rows"], result["cells"], strict=True):
                for cell in cells:  # each hour x weekday cell opens its records
                    listed = await c.post(
                        "/api/records/clinic_crm/appointment/query",
                        json={"filter": cell["drill_down"]["filter"], "count": True},
                    )
                    count = listed.json()["count"]
                    assert count == (cell["values"]["appointments"] or 0), (row, cell)


async def test_labels_follow_the_callers_locale(client: httpx.AsyncClient) -> None:
    document = definition()
    document["locales"] = ["en", "zh-CN"]
    document["label"] = {"en": "Ward", "zh-CN": "病房"}
    for form in document["forms"]:
        form["label"] = {"en": form["label"], "zh-CN": "就诊"}
        for field in form["fields"]:
            field["label"] = {"en": field["label"], "zh-CN": field["key"]}
            for option in field.get("options", []):
                option["label"] = {"en": option["value"], "zh-CN": option["value"]}
    document["reports"][0]["label"] = {"en": "Visits by department", "zh-CN": "各科室就诊"}
    document["reports"][1]["label"] = {"en": "Fees this month", "zh-CN": "本月费用"}
    document["dashboards"][0]["label"] = {"en": "Board", "zh-CN": "看板"}
    assert (await client.post("/api/apps/import", json=document)).status_code == 201, (
        await client.post("/api/apps/import", json=document)
    ).text
    url = f"/api/reports/{APP}/by_department"
    chinese = await client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert chinese.json()["label"] == "各科室就诊"
    svg = (await client.get(url, params={"format": "svg", "locale": "zh-CN"})).text
    assert '<title id="chart-title">各科室就诊</title>' in svg and "暂无数据" in svg
    assert (await client.get(url)).json()["label"] == "Visits by department"


async def test_hostile_values_are_422_never_500(client: httpx.AsyncClient, ward: None) -> None:
    spec = (
        '{"form": "visit", "rows": [{"field": "fee", "bins": [NaN]}], '
        '"measures": [{"key": "n", "op": "count"}]}'
    )
    raw = await client.post(
        f"/api/reports/{APP}", content=spec, headers={"content-type": "application/json"}
    )
    assert raw.status_code == 422 and raw.json()["errors"][0]["path"] == "/rows/0/bins/0"
    for dimension, pointer in [
        ({"field": "fee", "bin_width": 1e-300}, "/rows/0/bin_width"),
        ({"field": "fee", "bins": [1e300]}, "/rows/0/bins/0"),
    ]:
        response = await client.post(
            f"/api/reports/{APP}", json={**BY_DEPARTMENT, "rows": [dimension]}
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["path"] == pointer
    for params in ({"period_from": "yesterday"}, {"department": "x" * 500}):
        board = await client.get(f"/api/dashboards/{APP}/board", params=params)
        assert board.status_code == 422, params
        assert board.json()["errors"][0]["in"] == "query"


async def test_header_labels_follow_the_callers_locale(client: httpx.AsyncClient) -> None:
    document = definition()
    document["locales"] = ["en", "zh-CN"]
    for form in document["forms"]:
        form["label"] = {"en": form["label"], "zh-CN": "就诊"}
        for field in form["fields"]:
            field["label"] = {"en": field["label"], "zh-CN": field["key"]}
            for option in field.get("options", []):
                option["label"] = {"en": option["value"].title(), "zh-CN": f"{option['value']}诊"}
    for report in document["reports"]:
        report["label"] = {"en": report["label"], "zh-CN": report["label"]}
    document["dashboards"][0]["label"] = {"en": "Board", "zh-CN": "看板"}
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    for department, kind, fee, day in VISITS + [("dental", None, 5, "2026-11-24")]:
        data = {"department": department, "fee": fee, "day": day}
        if kind:
            data["kind"] = kind
        assert (
            await client.post(f"/api/records/{APP}/visit", json={"data": data})
        ).status_code == 201
    spec = {
        "form": "visit",
        "rows": [{"field": "kind"}],
        "columns": [{"field": "day", "bucket": "weekday"}],
        "measures": [{"key": "n", "op": "count"}],
    }

    def labels(body: dict[str, Any], side: str) -> list[str]:
        return [header["labels"][0] for header in body["result"][side]]

    chinese = (await client.post(f"/api/reports/{APP}", json=spec,
                                 params={"locale": "zh-CN"})).json()  # fmt: skip
    assert labels(chinese, "rows") == ["first诊", "repeat诊", "（空）"]
    assert "星期一" in labels(chinese, "columns")  # 2026-11-02 was a Monday
    english = (await client.post(f"/api/reports/{APP}", json=spec)).json()
    assert labels(english, "rows") == ["First", "Repeat", "(empty)"]
    assert "Monday" in labels(english, "columns")
    saved = await client.get(
        f"/api/reports/{APP}/by_department", headers={"Accept-Language": "zh-CN"}
    )
    assert saved.status_code == 200
