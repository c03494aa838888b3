"""The dashboard editor's pages and tiles on SQLite and PostgreSQL: the clinic's head office (a
design role) gets the list, the editor with the reports and each form's filter fields, and
tiles drawn as the dashboard page draws them (a KPI with its comparison, a tile's own chart);
a branch manager (no design) gets 403 from all three and no Edit button on the dashboard."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import httpx

from formloom import builtin_apps
from tests.conftest import Users

APP = "clinic_crm"


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="dashboard-editor-data">(.*?)</script>',
                      html, re.S)  # fmt: skip
    assert found is not None
    return dict(json.loads(unescape(found.group(1))))


async def test_designers_edit_dashboards_and_others_do_not(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=builtin_apps.load(APP))).status_code == 201
    office = await users.create("office_x", roles={APP: ["head_office"]})
    manager = await users.create("manager_x", roles={APP: ["manager"]})

    listed = await client.get(f"/designer/{APP}/dashboards", headers=office.headers)
    assert listed.status_code == 200 and 'data-testid="dashboard-manager"' in listed.text
    editor = await client.get(f"/designer/{APP}/dashboards/manager", headers=office.headers)
    assert editor.status_code == 200
    data = page_data(editor.text)
    assert data["dashboard"]["key"] == "manager" and isinstance(data["revision"], int)
    kpi = next(r for r in data["reports"] if r["key"] == "nps_overall")
    assert kpi["chart"]["type"] == "kpi" and kpi["form"] == "survey"
    patient = data["forms"]["patient"]
    assert [d["key"] for d in patient["dates"]][:2] == ["created_at", "updated_at"]
    assert "birth_date" in [d["key"] for d in patient["dates"]]
    choices = {c["key"]: c["kind"] for c in patient["choices"]}
    assert choices["branch"] == "relation" and choices["channel"] == "options"
    assert "name" not in choices and "birth_date" not in choices
    empty = await client.get(f"/designer/{APP}/dashboards/new", headers=office.headers)
    assert page_data(empty.text)["dashboard"] is None
    missing = await client.get(f"/designer/{APP}/dashboards/nothing", headers=office.headers)
    assert missing.status_code == 404

    # a tile as the dashboard page draws it: a KPI says what it compares
    tile = await client.get(
        f"/designer/{APP}/dashboards/-/tile", params={"report": "nps_overall"},
        headers=office.headers,
    )  # fmt: skip
    assert tile.status_code == 200, tile.text
    drawn = tile.json()
    assert drawn["svg"].startswith("<svg") and "<a " not in drawn["svg"]  # no drill links
    assert drawn["compare"]["words"]
    chart = {**kpi["chart"], "period": "week"}
    weekly = await client.get(
        f"/designer/{APP}/dashboards/-/tile",
        params={"report": "nps_overall", "chart": json.dumps(chart)},
        headers=office.headers,
    )
    assert weekly.status_code == 200, weekly.text
    assert weekly.json()["compare"]["words"] != drawn["compare"]["words"]  # other windows
    bad = await client.get(
        f"/designer/{APP}/dashboards/-/tile",
        params={"report": "nps_overall", "chart": '{"type": "radar"}'},
        headers=office.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "/chart"
    unknown = await client.get(
        f"/designer/{APP}/dashboards/-/tile", params={"report": "nope"}, headers=office.headers
    )
    assert unknown.status_code == 200 and "nope" in unknown.json()["error"]

    board = await client.get(f"/apps/{APP}/dashboards/manager", headers=office.headers)
    assert 'data-testid="dashboard-edit"' in board.text
    board = await client.get(f"/apps/{APP}/dashboards/manager", headers=manager.headers)
    assert board.status_code == 200 and 'data-testid="dashboard-edit"' not in board.text
    for path in ("dashboards", "dashboards/manager", "dashboards/new"):
        refused = await client.get(f"/designer/{APP}/{path}", headers=manager.headers)
        assert refused.status_code == 403, path
    refused = await client.get(
        f"/designer/{APP}/dashboards/-/tile", params={"report": "nps_overall"},
        headers=manager.headers,
    )  # fmt: skip
    assert refused.status_code == 403
