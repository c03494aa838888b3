"""The runtime pages on the server side, on SQLite and PostgreSQL: what the HTML carries for
a restricted caller (no hidden field, no forbidden button, no row outside the grants), the
old records URL, refusals as pages (audited), and sensitive reads audited as the API does.
(Kept beside the file store's tests: both are the runtime UI's server half.)"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users
from tests.platform.reports.test_pages import signed_in

APP = "clinic"


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name", required=True),
            f.field("dept", "select", options=[{"value": "a"}, {"value": "b"}]),
            f.field("secret", "text", label="Secret note"),
            f.field("locked", "text", label="Locked note"),
            title_field="name",
            sensitive=True,
        ),
        f.form(
            "visit",
            f.field("patient", "relation", target="patient", required=True),
            f.field("day", "date", required=True),
            title_field="day",
        ),
        roles=[{"key": "nurse"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["nurse"],
                "actions": ["read", "update"],
                "row_filter": {"==": [{"var": "dept"}, {"var": "$user.dept"}]},
                "hidden_fields": ["secret"],
                "read_only_fields": ["locked"],
            },
            {"form": "visit", "roles": ["nurse"], "actions": ["read"]},
        ],
    )


@pytest.fixture
async def records(client: httpx.AsyncClient) -> dict[str, str]:
    assert (await client.post("/api/apps/import", json=clinic())).status_code == 201
    ids = {}
    for name, dept in (("Ann", "a"), ("Bob", "b")):
        answer = await client.post(
            f"/api/records/{APP}/patient",
            json={"data": {"name": name, "dept": dept, "secret": f"{name}-secret", "locked": "x"}},
        )
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["id"]
    for day in ("2026-11-01", "2026-11-02"):
        answer = await client.post(
            f"/api/records/{APP}/visit", json={"data": {"patient": ids["Ann"], "day": day}}
        )
        assert answer.status_code == 201, answer.text
    return ids


async def test_a_nurse_sees_her_rows_and_fields_only(
    client: httpx.AsyncClient, users: Users, records: dict[str, str]
) -> None:
    async with signed_in(
        client, users, "nina", roles={APP: ["nurse"]}, attributes={"dept": "a"}
    ) as browser:
        home = await browser.get(f"/apps/{APP}")
        assert home.status_code == 200
        assert 'data-form="patient"' in home.text and "/designer/" not in home.text
        assert f'href="/apps/{APP}/forms/patient/new"' not in home.text  # no create grant
        listed = await browser.get(f"/apps/{APP}/forms/patient")
        assert listed.status_code == 200
        assert listed.text.count('data-testid="record-row"') == 1
        assert records["Ann"] in listed.text and records["Bob"] not in listed.text
        assert "Secret note" not in listed.text and "Ann-secret" not in listed.text
        assert 'data-testid="new-record"' not in listed.text
        # the old drill-down URL is the same page
        old = await browser.get(f"/apps/{APP}/records/patient")
        assert old.status_code == 200 and old.text.count('data-testid="record-row"') == 1
        page = await browser.get(f"/apps/{APP}/forms/patient/{records['Ann']}")
        assert page.status_code == 200
        assert "Ann-secret" not in page.text and "Secret note" not in page.text
        assert 'data-testid="edit"' in page.text and 'data-testid="delete"' not in page.text
        # her patient's visits, newest first, on the patient's page
        assert page.text.index("2026-11-02") < page.text.index("2026-11-01")
        assert 'data-testid="related-visit"' in page.text
        # the edit page gets the access the renderer needs, and no hidden definition
        edit = await browser.get(f"/apps/{APP}/forms/patient/{records['Ann']}/edit")
        data = json.loads(
            re.search(
                r'<script type="application/json" id="form-data">(.*?)</script>', edit.text
            ).group(1)  # type: ignore[union-attr]
        )
        assert data["access"] == {"secret": "hidden", "locked": "read"}
        assert [field["key"] for field in data["form"]["fields"]] == ["name", "dept", "locked"]
        assert "secret" not in data["values"] and data["record"]["version"] == 1
        # outside her rows: the same 404 as a missing record, as a page
        other = await browser.get(f"/apps/{APP}/forms/patient/{records['Bob']}")
        assert other.status_code == 404 and 'data-status="404"' in other.text
        # a visit she may only read: no edit page
        visit = (await client.get(f"/api/records/{APP}/visit", params={"limit": 1})).json()
        refused = await browser.get(f"/apps/{APP}/forms/visit/{visit['items'][0]['id']}/edit")
        assert refused.status_code == 403 and 'data-status="403"' in refused.text
    audit = (await client.get("/api/audit", params={"action": "auth.denied"})).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    assert any(e["actor"] == "nina" and e["form"] == "visit" for e in items)


async def test_reads_of_a_sensitive_form_are_audited(
    client: httpx.AsyncClient, users: Users, records: dict[str, str]
) -> None:
    async with signed_in(client, users, "boss", admin=True) as browser:
        assert (await browser.get(f"/apps/{APP}/forms/patient")).status_code == 200
        page = await browser.get(f"/apps/{APP}/forms/patient/{records['Bob']}")
        assert page.status_code == 200 and "Bob-secret" in page.text
    audit = (await client.get("/api/audit", params={"action": "record.read"})).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    mine = [e for e in items if e["actor"] == "boss"]
    assert any(set(e["detail"]["ids"]) == set(records.values()) for e in mine)  # the list
    assert any(e["record_id"] == records["Bob"] for e in mine)  # the record page


async def test_filters_sorting_and_paging_on_the_server(
    client: httpx.AsyncClient, users: Users, records: dict[str, str]
) -> None:
    async with signed_in(client, users, "boss", admin=True) as browser:
        rule = quote(json.dumps({"==": [{"var": "dept"}, "b"]}))
        page = await browser.get(f"/apps/{APP}/forms/patient?filter={rule}")
        assert page.text.count('data-testid="record-row"') == 1 and "Bob" in page.text
        # a filter the API refuses, or one that is not JSON: said on the page
        for bad in (quote('{"map": []}'), "%7Bnot"):
            page = await browser.get(f"/apps/{APP}/forms/patient?filter={bad}")
            assert page.status_code == 200 and 'data-testid="list-error"' in page.text
        page = await browser.get(f"/apps/{APP}/forms/patient?sort=name&limit=1")
        assert page.text.count('data-testid="record-row"') == 1
        assert 'data-count="1" data-more="true"' in page.text
        cursor = re.search(r'data-cursor="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        more = await browser.get(
            f"/apps/{APP}/forms/patient/rows", params={"sort": "name", "limit": 1, "cursor": cursor}
        )
        assert more.status_code == 200 and records["Bob"] in more.text
        assert "x-next-cursor" not in more.headers
        bad = await browser.get(f"/apps/{APP}/forms/patient/rows", params={"cursor": "nope"})
        assert bad.status_code == 400
        missing = await browser.get(f"/apps/{APP}/forms/nope")
        assert missing.status_code == 404 and 'data-status="404"' in missing.text
