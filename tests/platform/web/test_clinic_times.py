"""Times on the pages and in the CSV export are on the clinic's clock (``settings.timezone``),
with the zone named where it could be misread; the API keeps ISO 8601 in UTC. SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
import pytest

from formloom.platform.settings import Settings
from tests import factories as f

APP = "clinic_times"
BOOKED = "2026-12-04T02:00:00Z"  # 10:00 in Shanghai


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("patient", f.field("name", required=True)),
        f.form(
            "appointment",
            f.field("starts_at", "datetime", required=True, label={"en": "Starts at",
                                                                    "zh-CN": "开始时间"}),
            f.field("patient", "relation", target="patient"),
            f.field("visit_day", "date"),
            title_field="starts_at",
        ),
        f.form(
            "visit",
            f.field("note"),
            f.field("appointment", "relation", target="appointment"),
            f.field("discharged_at", "datetime"),
        ),
        f.form("callback", f.field("best_time", "datetime", required=True)),
    )  # fmt: skip


def shown(html: str) -> str:
    """The text of a page a person reads (tags and their attributes left out)."""
    return re.sub(r"<[^>]*>", " ", html)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


@pytest.fixture
async def booked(client: httpx.AsyncClient) -> dict[str, str]:
    assert (await client.post("/api/apps/import", json=clinic())).status_code == 201
    patient = await client.post(f"/api/records/{APP}/patient", json={"data": {"name": "Li"}})
    appointment = await client.post(
        f"/api/records/{APP}/appointment",
        json={"data": {"starts_at": BOOKED, "patient": patient.json()["id"],
                       "visit_day": "2026-12-04"}},
    )  # fmt: skip
    assert appointment.status_code == 201, appointment.text
    visit = await client.post(
        f"/api/records/{APP}/visit",
        json={"data": {"note": "ok", "appointment": appointment.json()["id"],
                       "discharged_at": "2026-12-03T09:00:00Z"}},
    )  # fmt: skip
    assert visit.status_code == 201, visit.text
    return {
        "patient": patient.json()["id"],
        "appointment": appointment.json()["id"],
        "visit": visit.json()["id"],
    }


async def test_the_api_keeps_utc(client: httpx.AsyncClient, booked: dict[str, str]) -> None:
    record = (await client.get(f"/api/records/{APP}/appointment/{booked['appointment']}")).json()
    assert record["data"]["starts_at"] == BOOKED


async def test_the_list_titles_and_times_are_local(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    page = await client.get(f"/apps/{APP}/forms/appointment")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-timezone="Asia/Shanghai"' in html
    assert (
        f'href="/apps/{APP}/forms/appointment/{booked["appointment"]}">2026-12-04 10:00</a>' in html
    )
    assert "02:00" not in shown(html) and "UTC" not in shown(html)
    # the starts_at cell: local text, the zone in its tooltip, the instant for scripts
    assert (
        f'<time datetime="{BOOKED}" title="2026-12-04 10:00 (Asia/Shanghai)" data-local>'
        "2026-12-04 10:00</time>"
    ) in html
    assert "Times in Asia/Shanghai" in html
    # a relation to an appointment is named by its local title on another form's list
    visits = (await client.get(f"/apps/{APP}/forms/visit")).text
    assert ">2026-12-04 10:00</a>" in visits and "2026-12-03 17:00</time>" in visits


async def test_record_pages_and_forms_are_local(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    page = (await client.get(f"/apps/{APP}/forms/appointment/{booked['appointment']}")).text
    assert "2026-12-04 10:00" in page and "02:00" not in shown(page)
    # the patient's page lists the appointment by its local title
    patient = (await client.get(f"/apps/{APP}/forms/patient/{booked['patient']}")).text
    assert ">2026-12-04 10:00<" in patient and "UTC" not in shown(patient)
    edit = (await client.get(f"/apps/{APP}/forms/appointment/{booked['appointment']}/edit")).text
    assert "Edit 2026-12-04 10:00" in edit
    assert 'data-testid="zone-legend">Times in Asia/Shanghai<' in edit
    zh = await client.get(
        f"/apps/{APP}/forms/appointment/{booked['appointment']}/edit", params={"lang": "zh-CN"}
    )
    assert "时间均为 Asia/Shanghai 时区" in zh.text
    # a form without a datetime field has no legend
    new_patient = (await client.get(f"/apps/{APP}/forms/patient/new")).text
    assert "zone-legend" not in new_patient


def table(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


async def test_the_csv_export_is_local_and_names_the_zone(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    header, row = table(await client.get(f"/api/exports/{APP}/appointment"))
    assert header == [
        "ID", "Starts at (Asia/Shanghai)", "Patient", "Visit day",
        "Created (Asia/Shanghai)", "Created by", "Updated (Asia/Shanghai)", "Updated by",
    ]  # fmt: skip
    values = dict(zip(header, row, strict=True))
    assert values["Starts at (Asia/Shanghai)"] == "2026-12-04 10:00:00"
    assert values["Visit day"] == "2026-12-04"  # a date has no zone
    # the fixed clock: 2026-11-23 10:30 in Shanghai
    assert values["Created (Asia/Shanghai)"] == "2026-11-23 10:30:00"
    zh_header = table(await client.get(f"/api/exports/{APP}/appointment?lang=zh-CN"))[0]
    assert zh_header[1] == "开始时间 (Asia/Shanghai)"
    # chosen columns too
    header, row = table(
        await client.get(f"/api/exports/{APP}/visit", params={"fields": "discharged_at"})
    )
    assert header == ["ID", "Discharged at (Asia/Shanghai)"] and row[1] == "2026-12-03 17:00:00"


async def test_formula_escaping_still_holds_next_to_times(
    client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    made = await client.post(f"/api/records/{APP}/visit", json={"data": {"note": "=1+2"}})
    assert made.status_code == 201
    header, *rows = table(await client.get(f"/api/exports/{APP}/visit"))
    notes = {row[header.index("Note")] for row in rows}
    assert "'=1+2" in notes and "=1+2" not in notes


async def test_the_public_page_reads_times_on_the_clinics_clock(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, booked: dict[str, str]
) -> None:
    made = await client.post(
        f"/api/apps/{APP}/forms/callback/links", json={"label": "When may we call?"}
    )
    assert made.status_code == 201, made.text
    page = await anon_client.get(f"/p/{made.json()['token']}")
    assert page.status_code == 200, page.text
    # form-values.js reads the zone from here: a patient abroad still answers clinic time
    assert 'data-timezone="Asia/Shanghai"' in page.text
