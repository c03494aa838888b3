"""A report's hop through a relation reads the related record through the caller's grant.

The attack (issue 19, item 4): a general-practice doctor holds a follow-up that points at a
visit of another department — a visit he cannot read (GET answers 404). A follow-up report
with rows ``visit.department``, ``visit.systolic`` used to show that visit's values. Now a
hop admits only the related records a plain read would: the others count as no related
record ("(empty)"), in ad-hoc and saved reports alike, and changing the unreadable record
changes no answer.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from tests.platform.permissions.helpers import as_user, make_user
from tests.platform.permissions.test_clinic_matrix import APP, DEFINITION, ELSEWHERE, HOME, seed


async def _setup(client: httpx.AsyncClient) -> tuple[dict[str, list[dict[str, Any]]], str]:
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    seeded = await seed(client)
    # a follow-up of the doctor's department pointing at the other department's visit
    # (written by an admin: the doctor himself may no longer point at it)
    response = await client.post(
        f"/api/records/{APP}/follow_up",
        json={
            "data": {
                "visit": seeded["visit"][1]["id"],
                "patient": seeded["patient"][1]["id"],
                "department": HOME,
                "branch": seeded["branch"][0]["id"],  # the doctor's branch, not the visit's
                "due_date": "2026-12-02",
            }
        },
    )
    assert response.status_code == 201, response.text
    # a value only the foreign visit holds
    response = await client.patch(
        f"/api/records/{APP}/visit/{seeded['visit'][1]['id']}", json={"data": {"systolic": 199}}
    )
    assert response.status_code == 200, response.text
    user = {
        "department": HOME,
        "staff_id": seeded["staff"][0]["id"],
        "branch": seeded["branch"][0]["id"],
    }
    token = await make_user(client, "hop_doctor", roles={APP: ["doctor"]}, attributes=user)
    return seeded, token


HOP_REPORT = {
    "form": "follow_up",
    "rows": [
        {"field": "visit.department"},
        {"field": "visit.systolic"},
        {"field": "visit.doctor"},
    ],
    "measures": [
        {"key": "n", "op": "count"},
        {"key": "pressure", "op": "max", "field": "visit.systolic"},
    ],
}


def _labels(result: dict[str, Any]) -> list[list[str]]:
    return [row["labels"] for row in result["rows"]]


async def test_a_hop_reads_only_the_related_records_the_caller_may_read(
    client: httpx.AsyncClient,
) -> None:
    seeded, token = await _setup(client)
    foreign = seeded["visit"][1]
    async with as_user(client, token) as doctor:
        assert (await doctor.get(f"/api/records/{APP}/visit/{foreign['id']}")).status_code == 404
        first = await doctor.post(f"/api/reports/{APP}", json=HOP_REPORT)
        assert first.status_code == 200, first.text
        result = first.json()["result"]
        text = json.dumps(result)
        assert ELSEWHERE not in text and "Dental" not in text
        assert "199" not in text  # the foreign visit's systolic
        # the follow-up pointing at the foreign visit is counted with no related visit
        rows = _labels(result)
        assert any(all(label in ("(empty)", "") for label in row) for row in rows), rows
        # changing the unreadable visit changes no answer
        changed = await client.patch(
            f"/api/records/{APP}/visit/{foreign['id']}",
            json={"data": {"systolic": 150, "department": "surgery"}},
        )
        assert changed.status_code == 200, changed.text
        moved_back = await client.patch(
            f"/api/records/{APP}/visit/{foreign['id']}", json={"data": {"department": ELSEWHERE}}
        )
        assert moved_back.status_code == 200, moved_back.text
        again = await doctor.post(f"/api/reports/{APP}", json=HOP_REPORT)
        assert again.json()["result"] == result
        # once readable (moved into his department and branch), the hop shows it
        readable = await client.patch(
            f"/api/records/{APP}/visit/{foreign['id']}",
            json={"data": {"department": HOME, "branch": seeded["branch"][0]["id"]}},
        )
        assert readable.status_code == 200, readable.text
        shown = await doctor.post(f"/api/reports/{APP}", json=HOP_REPORT)
        assert "150" in json.dumps(shown.json()["result"])


async def test_a_hop_cell_drills_down_to_what_it_counts(client: httpx.AsyncClient) -> None:
    seeded, token = await _setup(client)
    async with as_user(client, token) as doctor:
        response = await doctor.post(
            f"/api/reports/{APP}?drill=inline",
            json={
                "form": "follow_up",
                "rows": [{"field": "visit.department"}],
                "measures": [{"key": "n", "op": "count"}],
            },
        )
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        for row, cells in zip(result["rows"], result["cells"], strict=True):
            cell = cells[0]
            drill = quote(json.dumps(cell["drill_down"]), safe="")
            listed = await doctor.get(f"/apps/{APP}/records/follow_up?drill={drill}")
            assert listed.status_code == 200, listed.text
            # the list page counts the records behind the cell (a doctor may not export:
            # the clinic README's "Export")
            counted = re.search(r'data-count="(\d+)"', listed.text)
            assert counted is not None and int(counted.group(1)) == cell["values"]["n"], row[
                "labels"
            ]
            refused = await doctor.get(f"/api/exports/{APP}/follow_up?drill={drill}")
            assert refused.status_code == 403, refused.text


async def test_saved_reports_hop_through_the_callers_grant(client: httpx.AsyncClient) -> None:
    seeded, token = await _setup(client)
    foreign_doctor = seeded["staff"][1]
    async with as_user(client, token) as doctor:
        # NPS by doctor: survey -> visit.doctor; the other department's visit is not his
        response = await doctor.get(f"/api/reports/{APP}/nps_by_doctor")
        assert response.status_code == 200, response.text
        assert foreign_doctor["id"] not in json.dumps(response.json()["result"]["rows"])
        assert f"Dr {ELSEWHERE}" not in response.text
    manager_token = await make_user(client, "hop_head_office", roles={APP: ["head_office"]})
    async with as_user(client, manager_token) as manager:
        # the head office reads every visit, in every branch: the report names both doctors
        response = await manager.get(f"/api/reports/{APP}/nps_by_doctor")
        assert response.status_code == 200, response.text
        assert f"Dr {ELSEWHERE}" in response.text
