"""Pages show a record's times in its own zone when the app gives it one (its branch's,
``"zone": {"field": "branch.timezone"}``), naming the zone when it is not the deployment's:
list rows (each row in its own zone), titles, relation names, the record page and the cards
of records pointing at a record. Records of the deployment's zone read as before. SQLite
and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users

APP = "branch_pages"
AT = "2026-12-05T04:00:00Z"  # 10:00 in Urumqi, 12:00 in Shanghai
URUMQI = "2026-12-05 10:00 (Asia/Urumqi)"


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("branch", f.field("name", required=True), f.field("timezone"), title_field="name"),
        f.form(
            "appointment",
            f.field("starts_at", "datetime", required=True),
            f.field("branch", "relation", target="branch"),
            title_field="starts_at",
        ),
        f.form("visit", f.field("note"), f.field("appointment", "relation", target="appointment")),
        zone={"field": "branch.timezone"},
        roles=[{"key": "desk"}],
        permissions=[{"form": "*", "roles": ["desk"], "actions": ["create", "read", "update"]}],
    )


def shown(html: str) -> str:
    return re.sub(r"<[^>]*>", " ", html)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture
async def booked(client: httpx.AsyncClient) -> dict[str, str]:
    assert (await client.post("/api/apps/import", json=clinic())).status_code == 201
    xuhui = await create(client, "branch", {"name": "Xuhui", "timezone": "Asia/Shanghai"})
    kashgar = await create(client, "branch", {"name": "Kashgar", "timezone": "Asia/Urumqi"})
    west = await create(client, "appointment", {"starts_at": AT, "branch": kashgar})
    east = await create(client, "appointment", {"starts_at": AT, "branch": xuhui})
    visit = await create(client, "visit", {"note": "ok", "appointment": west})
    return {"kashgar": kashgar, "west": west, "east": east, "visit": visit}


async def test_a_list_names_each_rows_zone_where_it_is_not_the_deployments(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    html = (await client.get(f"/apps/{APP}/forms/appointment")).text
    west, east = booked["west"], booked["east"]
    assert f'href="/apps/{APP}/forms/appointment/{west}">{URUMQI}</a>' in html
    assert f'<time datetime="{AT}" title="{URUMQI}">{URUMQI}</time>' in html
    # the Shanghai row reads as before: no zone in the text, the script may re-render it
    assert f'href="/apps/{APP}/forms/appointment/{east}">2026-12-05 12:00</a>' in html
    assert (
        f'<time datetime="{AT}" title="2026-12-05 12:00 (Asia/Shanghai)" data-local>'
        "2026-12-05 12:00</time>"
    ) in html
    # another form's list names the appointment by its title in its own zone
    visits = (await client.get(f"/apps/{APP}/forms/visit")).text
    assert f">{URUMQI}</a>" in visits


async def test_a_record_page_is_in_the_records_zone(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    page = (await client.get(f"/apps/{APP}/forms/appointment/{booked['west']}")).text
    assert URUMQI in shown(page) and "12:00" not in shown(page)
    # the branch's page lists its appointment in the appointment's zone
    branch = (await client.get(f"/apps/{APP}/forms/branch/{booked['kashgar']}")).text
    assert f">{URUMQI}<" in branch
    # a record of the deployment's zone is shown as before
    east = (await client.get(f"/apps/{APP}/forms/appointment/{booked['east']}")).text
    assert "2026-12-05 12:00" in shown(east) and "Asia/Urumqi" not in shown(east)


async def test_the_csv_export_writes_each_row_on_its_own_clock(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    """Spreadsheets get plain wall-clock times, each row's in its branch's zone, and the zone
    in a column of its own (not in the header, which no longer has one zone to name)."""
    answer = await client.get(
        f"/api/exports/{APP}/appointment",
        params={"fields": "starts_at"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 200, answer.text
    header, *rows = answer.text.lstrip("\ufeff").splitlines()
    assert header.split(",")[-1] == "时区" and "Asia/Shanghai" not in header
    assert sorted(row.split(",")[1:] for row in rows) == [
        ["2026-12-05 10:00:00", "Asia/Urumqi"],
        ["2026-12-05 12:00:00", "Asia/Shanghai"],
    ]
    # a form without a branch keeps the deployment's zone, named in its header
    visits = await client.get(f"/api/exports/{APP}/visit", params={"fields": "note,created_at"})
    assert visits.status_code == 200, visits.text
    assert "(Asia/Shanghai)" in visits.text.splitlines()[0]


async def test_a_form_types_times_on_the_records_clock(
    client: httpx.AsyncClient, booked: dict[str, str], users: Users
) -> None:
    """The edit form of a Kashgar appointment reads and writes Urumqi wall-clock times (the
    page's zone, which form-values.js converts with); a new record is typed on the clock of
    the user's own branch; anyone else's on the deployment's."""
    page = (await client.get(f"/apps/{APP}/forms/appointment/{booked['west']}/edit")).text
    assert 'data-timezone="Asia/Urumqi"' in page and "Times in Asia/Urumqi" in page
    east = (await client.get(f"/apps/{APP}/forms/appointment/{booked['east']}/edit")).text
    assert 'data-timezone="Asia/Shanghai"' in east
    fresh = (await client.get(f"/apps/{APP}/forms/appointment/new")).text
    assert 'data-timezone="Asia/Shanghai"' in fresh  # the admin has no branch
    desk = await users.create(
        "desk_ks", roles={APP: ["desk"]}, attributes={"branch": booked["kashgar"]}
    )
    theirs = await client.get(f"/apps/{APP}/forms/appointment/new", headers=desk.headers)
    assert theirs.status_code == 200, theirs.text
    assert 'data-timezone="Asia/Urumqi"' in theirs.text
