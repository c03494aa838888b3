"""The dashboard page and the records page it drills down to, signed in with a session."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx

from tests.conftest import Users
from tests.platform.reports.test_reports_api import APP, ward  # noqa: F401 - the fixture


@asynccontextmanager
async def signed_in(
    client: httpx.AsyncClient, users: Users, name: str, **kwargs: object
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in with a session cookie."""
    user = await users.create(name, **kwargs)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=client._transport, base_url=str(client.base_url)
    ) as browser:
        answer = await browser.post(
            "/api/auth/session", json={"username": name, "password": user.password}
        )
        assert answer.status_code in (200, 201), answer.text
        yield browser


async def test_pages_need_a_session(anon_client: httpx.AsyncClient) -> None:
    page = await anon_client.get(f"/apps/{APP}/dashboards/board")
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=%2Fapps%2Fward%2Fdashboards%2Fboard"
    signin = await anon_client.get("/signin", params={"next": "//evil.example/x"})
    assert signin.status_code == 200 and 'data-next="/"' in signin.text  # no open redirect
    assert (await anon_client.get("/static/app.css")).status_code == 200


async def test_dashboard_page_draws_charts_that_drill_down(
    client: httpx.AsyncClient,
    users: Users,
    ward: None,  # noqa: F811
) -> None:
    async with signed_in(client, users, "boss", admin=True) as browser:
        page = await browser.get(f"/apps/{APP}/dashboards/board")
        assert page.status_code == 200, page.text
        charts = re.findall(r"<svg[^>]*role=\"img\"", page.text)
        assert len(charts) == 2, "one chart per tile (the page's own icons aside)"
        links = [unescape(href) for href in re.findall(r'<a href="(/apps/[^"]+)"', page.text)]
        assert links, "bars and table cells link to their records"
        table = re.search(r'<table class="fl-pivot">.*?</table>', page.text, re.S)
        assert table is not None
        ET.fromstring(table.group(0))  # well-formed markup
        # every linked cell opens a records page with exactly that many records
        # every link opens the records page of the records behind it
        for href in links:
            records = await browser.get(href)
            assert records.status_code == 200, href
            count = int(re.search(r'data-count="(\d+)"', records.text).group(1))
            assert count >= 1
            assert records.text.count("<tr data-id=") == min(count, 100)
        filtered = await browser.get(
            f"/apps/{APP}/dashboards/board",
            params={"period_from": "2026-11-01", "department": "dental"},
        )
        assert filtered.status_code == 200 and 'value="dental"' in filtered.text


async def test_a_drill_down_counts_what_the_cell_says(
    client: httpx.AsyncClient,
    users: Users,
    ward: None,  # noqa: F811
) -> None:
    body = (await client.get(f"/api/reports/{APP}/by_department")).json()
    cell = body["result"]["cells"][0][0]
    coordinates = {
        "row": json.dumps(body["result"]["rows"][0]["keys"]),
        "column": json.dumps(body["result"]["columns"][0]["keys"]),
    }
    drilled = await client.get(f"/api/reports/{APP}/by_department/drill", params=coordinates)
    href = drilled.json()["href"]
    async with signed_in(client, users, "boss", admin=True) as browser:
        page = await browser.get(href)
    assert page.status_code == 200, page.text
    assert int(re.search(r'data-count="(\d+)"', page.text).group(1)) == cell["values"]["visits"]
    assert page.text.count("<tr data-id=") == cell["values"]["visits"]


async def test_a_weekday_cell_opens_its_records_page(
    client: httpx.AsyncClient,
    users: Users,
    ward: None,  # noqa: F811
) -> None:
    """A weekday bucket over a year of visits: each cell's link is short and its page
    counts what the cell says."""
    from formloom.engines.reports import DrillDown
    from formloom.platform.web.pages import drill_href

    first = datetime(2025, 11, 1, 22, tzinfo=UTC)
    for i in range(40):
        seen = (first + timedelta(days=9 * i, hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = {"department": "surgery", "seen_at": seen}
        assert (await client.post(f"/api/records/{APP}/visit", json={"data": data})).is_success
    spec = {
        "form": "visit",
        "rows": [{"field": "seen_at", "bucket": "weekday"}],
        "measures": [{"key": "visits", "op": "count"}],
    }
    result = (await client.post(f"/api/reports/{APP}", json=spec)).json()["result"]
    assert len(result["rows"]) == 8  # Monday ... Sunday and the ward's visits without a time
    async with signed_in(client, users, "boss", admin=True) as browser:
        for header, row in zip(result["rows"], result["cells"], strict=True):
            cell = row[0]
            body = {"spec": spec, "row": header["keys"]}
            drilled = await client.post(f"/api/reports/{APP}/drill", json=body)
            assert drilled.status_code == 200, drilled.text
            href = drilled.json()["href"]
            assert href == drill_href(APP, DrillDown.model_validate(drilled.json()))
            assert len(href) < 400, href
            page = await browser.get(href)
            assert page.status_code == 200, page.text
            count = int(re.search(r'data-count="(\d+)"', page.text).group(1))
            assert count == cell["values"]["visits"], href


async def test_home_lists_the_callers_apps_dashboards_and_forms(
    client: httpx.AsyncClient,
    users: Users,
    ward: None,  # noqa: F811
) -> None:
    async with signed_in(
        client, users, "nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"}
    ) as browser:
        home = await browser.get("/")
        assert home.status_code == 200
        assert f'href="/apps/{APP}/dashboards/board"' in home.text
        assert f'href="/apps/{APP}/forms/visit"' in home.text
        listed = await browser.get(f"/apps/{APP}/records/visit")
        assert 'data-count="3"' in listed.text  # her department only
        assert "Secret score" not in listed.text  # a hidden column is not shown
    async with signed_in(client, users, "olga", roles={"other": ["x"]}) as browser:
        home = await browser.get("/")
        assert APP not in home.text
