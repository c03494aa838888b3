"""Dashboard filters offer choices (issue 17, item 6), on SQLite and PostgreSQL: a select
filter lists its field's options by label in the reader's language, a filter on a link to
another form is a picker of that form's records (its chosen record named by title, never
an id), a filter on a field hidden from the caller is not offered, and a tile that a filter
asked for does not narrow says so."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from tests import factories as f
from tests.conftest import Users
from tests.platform.reports.test_pages import signed_in

APP = "desk"


def definition() -> dict[str, Any]:
    departments = [
        {"value": "surgery", "label": {"en": "Surgery", "zh-CN": "外科"}},
        {"value": "dental", "label": {"en": "Dental", "zh-CN": "口腔科"}},
    ]
    return f.app(
        APP,
        f.form("branch", f.field("name", required=True), title_field="name"),
        f.form(
            "visit",
            f.field("department", "select", options=departments),
            f.field("branch", "relation", target="branch"),
            f.field("fee", "number"),
        ),
        f.form("patient", f.field("name"), f.field("branch", "relation", target="branch")),
        locales=["en", "zh-CN"],
        label={"en": "Desk", "zh-CN": "前台"},
        roles=[{"key": "clerk"}],
        permissions=[  # fmt: skip
            {"form": "visit", "roles": ["clerk"], "actions": ["read"],
             "hidden_fields": ["department"]},
            {"form": "patient", "roles": ["clerk"], "actions": ["read"]},
            {"form": "branch", "roles": ["clerk"], "actions": ["read"]},
        ],
        reports=[
            {"key": "visits", "label": "Visits", "form": "visit",
             "rows": [{"field": "fee"}], "measures": [{"key": "n", "op": "count"}]},
            {"key": "patients", "label": "Patients", "form": "patient",
             "rows": [{"field": "name"}], "measures": [{"key": "n", "op": "count"}]},
        ],
        dashboards=[
            {"key": "board", "label": "Board",
             "filters": [{"key": "department", "type": "select", "field": "department",
                          "label": {"en": "Department", "zh-CN": "科室"}},
                         {"key": "branch", "type": "select", "field": "branch",
                          "label": {"en": "Branch", "zh-CN": "分院"}}],
             "items": [{"report": "visits"}, {"report": "patients"}]},
        ],
    )  # fmt: skip


def _notes(html: str) -> dict[str, str]:
    tiles = re.findall(r'data-report="(\w+)">\s*(?:<p class="filter-note"[^>]*>([^<]*)</p>)?', html)
    return {report: unescape(note) for report, note in tiles}


async def test_filters_offer_labels_and_records_by_title(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    branch = await client.post(f"/api/records/{APP}/branch", json={"data": {"name": "Pudong"}})
    branch_id = branch.json()["id"]
    visit = {"department": "dental", "branch": branch_id, "fee": 10}
    assert (await client.post(f"/api/records/{APP}/visit", json={"data": visit})).status_code == 201
    patient = {"name": "Li", "branch": branch_id}
    assert (
        await client.post(f"/api/records/{APP}/patient", json={"data": patient})
    ).status_code == 201
    async with signed_in(client, users, "boss", admin=True) as browser:
        page = (await browser.get(f"/apps/{APP}/dashboards/board")).text
        assert '<option value="surgery">Surgery</option>' in page
        assert '<option value="dental">Dental</option>' in page
        assert 'data-filter-relation data-key="branch" data-target="branch"' in page
        assert "filter-note" not in page  # nothing asked for, nothing to say
        zh = (await browser.get(f"/apps/{APP}/dashboards/board", params={"lang": "zh-CN"})).text
        assert '<option value="surgery">外科</option>' in zh and ">全部<" in zh
        asked = await browser.get(
            f"/apps/{APP}/dashboards/board", params={"department": "dental", "branch": branch_id}
        )
        html = asked.text
        assert '<option value="dental" selected>Dental</option>' in html
        assert 'data-title="Pudong"' in html  # the chosen branch by its name
        # patients have no department: their tile says so; visits are narrowed by both
        assert _notes(html) == {"visits": "", "patients": "Not narrowed by Department"}
    # the clerk cannot see visits' department: the filter is not offered to him
    async with signed_in(client, users, "clerk", roles={APP: ["clerk"]}) as browser:
        page = (await browser.get(f"/apps/{APP}/dashboards/board")).text
        assert 'name="department"' not in page and "Surgery" not in page
        assert 'data-key="branch"' in page
