"""The clinic CRM's branches: rows carry their branch, grants keep each branch to its own.

Two branches, Xuhui and Pudong. A front desk user of Xuhui must not find a Pudong patient
through any door: the list, a query, the relation picker's search, a single read, its
history, the patient 360 (`/related`), the CSV export, a saved report, an ad-hoc report with
a filter, a dashboard tile and the records behind a drill-down. The head office sees both.
New records take their branch from the patient (or the registering user), and the manager
dashboard's branch filter narrows the counts, checked against counts worked out here.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.platform.permissions.helpers import as_user, make_user
from tests.platform.permissions.test_clinic_matrix import APP, DEFINITION

XUHUI_NAMES = ("Wang Xuhui", "Li Xuhui")
PUDONG_NAMES = ("Zhao Pudong", "Sun Pudong", "Qian Pudong")


async def created(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


async def two_branches(client: httpx.AsyncClient) -> dict[str, Any]:
    """The app, two branches, their people and their patients; returns what the tests use."""
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    xuhui = await created(
        client, "branch", {"name": "Xuhui", "code": "XH", "timezone": "Asia/Shanghai"}
    )
    pudong = await created(
        client, "branch", {"name": "Pudong", "code": "PD", "timezone": "Asia/Shanghai"}
    )
    doctor = await created(
        client,
        "staff",
        {"name": "Dr. Pudong", "role": "doctor", "department": "general", "branch": pudong["id"]},
    )
    tokens = {
        "desk_xh": await make_user(
            client, "desk_xh", roles={APP: ["front_desk"]}, attributes={"branch": xuhui["id"]}
        ),
        "desk_pd": await make_user(
            client, "desk_pd", roles={APP: ["front_desk"]}, attributes={"branch": pudong["id"]}
        ),
        "head": await make_user(client, "head", roles={APP: ["head_office"]}),
        "manager_xh": await make_user(
            client, "manager_xh", roles={APP: ["manager"]}, attributes={"branch": xuhui["id"]}
        ),
    }
    patients: dict[str, dict[str, Any]] = {}
    for desk, names in (("desk_xh", XUHUI_NAMES), ("desk_pd", PUDONG_NAMES)):
        async with as_user(client, tokens[desk]) as caller:
            for i, name in enumerate(names):
                # no branch sent: the registering user's branch is filled in
                patients[name] = await created(
                    caller, "patient", {"name": name, "phone": f"+86 139 {len(patients)}000 000{i}"}
                )
    return {
        "xuhui": xuhui["id"],
        "pudong": pudong["id"],
        "doctor": doctor["id"],
        "tokens": tokens,
        "patients": patients,
    }


async def test_a_patient_takes_the_registering_users_branch(client: httpx.AsyncClient) -> None:
    world = await two_branches(client)
    for name in XUHUI_NAMES:
        assert world["patients"][name]["data"]["branch"] == world["xuhui"]
    for name in PUDONG_NAMES:
        assert world["patients"][name]["data"]["branch"] == world["pudong"]


async def test_a_visit_for_a_pudong_patient_is_pudongs(client: httpx.AsyncClient) -> None:
    world = await two_branches(client)
    patient = world["patients"]["Zhao Pudong"]["id"]
    visit = {
        "patient": patient,
        "doctor": world["doctor"],
        "department": "general",
        "visit_date": "2026-11-20",
        "visit_type": "first",
    }
    # the platform admin has no branch: the patient's is taken
    made = await created(client, "visit", visit)
    assert made["data"]["branch"] == world["pudong"]
    booking = {
        "patient": patient,
        "doctor": world["doctor"],
        "department": "general",
        "starts_at": "2026-11-30T10:00:00+08:00",
    }
    async with as_user(client, world["tokens"]["desk_pd"]) as desk:
        appointment = await created(desk, "appointment", booking)
        assert appointment["data"]["branch"] == world["pudong"]
    follow_up = await created(
        client,
        "follow_up",
        {
            "visit": made["id"],
            "patient": patient,
            "department": "general",
            "due_date": "2026-11-23",
        },
    )
    assert follow_up["data"]["branch"] == world["pudong"]
    # Xuhui's front desk cannot book a Pudong patient: to her there is no such patient
    async with as_user(client, world["tokens"]["desk_xh"]) as desk:
        other = {**booking, "starts_at": "2026-11-30T11:00:00+08:00"}
        refused = await desk.post(f"/api/records/{APP}/appointment", json={"data": other})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "patient"
        assert "Zhao" not in refused.text
        # nor register a patient in Pudong, nor move one of its own there
        moved = await desk.post(
            f"/api/records/{APP}/patient",
            json={"data": {"name": "Elsewhere", "phone": "+86 139 9999 0000",
                           "branch": world["pudong"]}},
        )  # fmt: skip
        assert moved.status_code == 403, moved.text
        own = world["patients"]["Wang Xuhui"]
        patch = await desk.patch(
            f"/api/records/{APP}/patient/{own['id']}", json={"data": {"branch": world["pudong"]}}
        )
        assert patch.status_code in (403, 404), patch.text
        assert (await client.get(f"/api/records/{APP}/patient/{own['id']}")).json()["data"][
            "branch"
        ] == world["xuhui"]


async def test_front_desk_finds_no_other_branchs_patient_through_any_door(
    client: httpx.AsyncClient,
) -> None:
    world = await two_branches(client)
    pudong = [world["patients"][name] for name in PUDONG_NAMES]
    visit = await created(
        client,
        "visit",
        {"patient": pudong[0]["id"], "doctor": world["doctor"], "department": "general",
         "visit_date": "2026-11-20", "visit_type": "first"},
    )  # fmt: skip
    base = f"/api/records/{APP}"

    def clean(response: httpx.Response) -> None:
        """Nothing of Pudong's patients in the answer (a 404 names the id it was asked)."""
        for name in PUDONG_NAMES:
            assert name not in response.text, (response.request.url, response.text[:300])
        for record in pudong:
            if record["id"] not in str(response.request.url):
                assert record["id"] not in response.text, response.request.url

    async with as_user(client, world["tokens"]["desk_xh"]) as desk:
        listed = await desk.get(f"{base}/patient", params={"count": "true", "limit": 100})
        assert listed.status_code == 200
        assert sorted(p["data"]["name"] for p in listed.json()["items"]) == sorted(XUHUI_NAMES)
        assert listed.json()["count"] == len(XUHUI_NAMES)
        clean(listed)
        queried = await desk.post(
            f"{base}/patient/query",
            json={"filter": {"in": ["Pudong", {"var": "name"}]}, "count": True},
        )
        assert queried.status_code == 200 and queried.json()["count"] == 0
        clean(queried)
        # the relation picker's search: the list with a title filter, titles only
        picker = await desk.get(
            f"{base}/patient",
            params={"filter": json.dumps({"in": ["Zhao", {"var": "name"}]}), "fields": "name",
                    "limit": 20, "sort": "-id"},
        )  # fmt: skip
        assert picker.status_code == 200 and picker.json()["items"] == []
        for path in (
            f"{base}/patient/{pudong[0]['id']}",
            f"{base}/patient/{pudong[0]['id']}/history",
            f"{base}/patient/{pudong[0]['id']}/related",
            f"{base}/visit/{visit['id']}",
            f"{base}/visit/{visit['id']}/history",
        ):
            answer = await desk.get(path)
            assert answer.status_code == 404, (path, answer.text)
            clean(answer)
        visits = await desk.get(f"{base}/visit", params={"count": "true"})
        assert visits.status_code == 200 and visits.json()["count"] == 0
        # front desk does not export lists at all (the README's "Export"); Xuhui's manager
        # exports Xuhui's patients and nothing of Pudong's
        refused = await desk.get(f"/api/exports/{APP}/patient")
        assert refused.status_code == 403, refused.text
        clean(refused)
        async with as_user(client, world["tokens"]["manager_xh"]) as manager:
            exported = await manager.get(f"/api/exports/{APP}/patient")
            assert exported.status_code == 200, exported.text
            assert all(name in exported.text for name in XUHUI_NAMES)
            clean(exported)
        saved = await desk.get(f"/api/reports/{APP}/patients_by_branch")
        assert saved.status_code == 200, saved.text
        assert saved.json()["result"]["grand_total"]["values"]["patients"] == len(XUHUI_NAMES)
        adhoc = await desk.post(
            f"/api/reports/{APP}",
            json={"form": "patient", "rows": [{"field": "name"}],
                  "measures": [{"key": "n", "op": "count"}],
                  "filter": {"in": ["Pudong", {"var": "name"}]}},
        )  # fmt: skip
        assert adhoc.status_code == 200, adhoc.text
        assert adhoc.json()["result"]["rows"] == []
        clean(adhoc)
        drilled = 0
        for params in ({"branch": world["pudong"]}, {}):
            board = await desk.get(f"/api/dashboards/{APP}/manager", params=params)
            assert board.status_code == 200, board.text
            clean(board)
            for item in board.json()["items"]:
                if "result" not in item:
                    continue  # a tile front desk may not run (its form is not readable)
                for row in item["result"]["cells"]:
                    for cell in row:
                        drill = cell.get("drill_down")
                        if not drill:
                            continue
                        behind = await desk.post(
                            f"{base}/{drill['form']}/query", json={"filter": drill["filter"]}
                        )
                        assert behind.status_code == 200, behind.text
                        clean(behind)
                        drilled += len(behind.json()["items"])
        assert drilled >= len(XUHUI_NAMES)  # Xuhui's own records are behind its cells
        # the same doors, unfiltered, open Xuhui's patients
        own = world["patients"][XUHUI_NAMES[0]]
        assert (await desk.get(f"{base}/patient/{own['id']}/related")).status_code == 200
    # Pudong's own desk and the head office find the patient
    for who, names in (("desk_pd", PUDONG_NAMES), ("head", XUHUI_NAMES + PUDONG_NAMES)):
        async with as_user(client, world["tokens"][who]) as caller:
            listed = await caller.get(f"{base}/patient", params={"limit": 100})
            assert sorted(p["data"]["name"] for p in listed.json()["items"]) == sorted(names)
            read = await caller.get(f"{base}/patient/{pudong[0]['id']}")
            assert read.status_code == 200
            assert (
                await caller.get(f"{base}/patient/{pudong[0]['id']}/related")
            ).status_code == 200
    # Xuhui's branch manager reads Xuhui only; the head office may add a branch, she may not
    async with as_user(client, world["tokens"]["manager_xh"]) as manager:
        listed = await manager.get(f"{base}/patient", params={"limit": 100})
        assert sorted(p["data"]["name"] for p in listed.json()["items"]) == sorted(XUHUI_NAMES)
        new_branch = {"name": "Minhang", "code": "MH", "timezone": "Asia/Shanghai"}
        refused = await manager.post(f"{base}/branch", json={"data": new_branch})
        assert refused.status_code == 403
    async with as_user(client, world["tokens"]["head"]) as head:
        assert (await head.post(f"{base}/branch", json={"data": new_branch})).status_code == 201


async def test_the_dashboards_branch_filter_narrows_the_counts(client: httpx.AsyncClient) -> None:
    world = await two_branches(client)
    visits_per_patient = {"Wang Xuhui": 1, "Li Xuhui": 2, "Zhao Pudong": 3, "Sun Pudong": 0,
                          "Qian Pudong": 1}  # fmt: skip
    days = ["2026-10-05", "2026-11-02", "2026-11-20"]
    for name, count in visits_per_patient.items():
        for i in range(count):
            await created(
                client,
                "visit",
                {"patient": world["patients"][name]["id"], "doctor": world["doctor"],
                 "department": "general", "visit_date": days[i],
                 "visit_type": "follow_up" if i else "first"},
            )  # fmt: skip
    expected_visits = {
        world["xuhui"]: sum(visits_per_patient[n] for n in XUHUI_NAMES),
        world["pudong"]: sum(visits_per_patient[n] for n in PUDONG_NAMES),
    }
    expected_patients = {world["xuhui"]: len(XUHUI_NAMES), world["pudong"]: len(PUDONG_NAMES)}
    assert expected_visits[world["xuhui"]] != expected_visits[world["pudong"]]

    def tile(board: dict[str, Any], report: str) -> dict[str, Any]:
        item: dict[str, Any] = next(i for i in board["items"] if i["report"] == report)
        return item["result"]

    def total(result: dict[str, Any], measure: str) -> int:
        return int(result["grand_total"]["values"][measure] or 0)

    async with as_user(client, world["tokens"]["head"]) as head:
        everything = (await head.get(f"/api/dashboards/{APP}/manager")).json()
        assert total(tile(everything, "visits_by_branch"), "visits") == sum(
            expected_visits.values()
        )
        assert total(tile(everything, "revisit_rate"), "visits") == sum(expected_visits.values())
        for branch, visits in expected_visits.items():
            board = await head.get(f"/api/dashboards/{APP}/manager", params={"branch": branch})
            assert board.status_code == 200, board.text
            body = board.json()
            assert total(tile(body, "visits_by_branch"), "visits") == visits
            assert total(tile(body, "revisit_rate"), "visits") == visits
            assert total(tile(body, "patients_by_branch"), "patients") == expected_patients[branch]
        # the visits tile shows each branch by its name, months as rows
        columns = tile(everything, "visits_by_branch")["columns"]
        assert sorted(c["labels"][0] for c in columns) == ["Pudong", "Xuhui"]
    # a branch manager's dashboard is her branch's, whatever the filter asks
    async with as_user(client, world["tokens"]["manager_xh"]) as manager:
        mine = (await manager.get(f"/api/dashboards/{APP}/manager")).json()
        assert total(tile(mine, "visits_by_branch"), "visits") == expected_visits[world["xuhui"]]
        other = await manager.get(
            f"/api/dashboards/{APP}/manager", params={"branch": world["pudong"]}
        )
        assert total(tile(other.json(), "visits_by_branch"), "visits") == 0


async def test_flow_tasks_go_to_the_records_branch(client: httpx.AsyncClient) -> None:
    """A follow-up call is for the nurses of the visit's department *and branch* (they are
    the ones who may read the visit); a visit without a branch, for the department's."""
    world = await two_branches(client)
    for name, branch in (("nurse_xh", world["xuhui"]), ("nurse_pd", world["pudong"])):
        await make_user(
            client, name, roles={APP: ["nurse"]}, attributes={"department": "surgery",
                                                              "branch": branch}
        )  # fmt: skip

    async def candidates(record: dict[str, Any]) -> list[str]:
        response = await client.post(
            f"/api/flows/{APP}/follow_up_plan/simulate",
            json={"record": {"visit_date": "2026-11-23", "follow_up_plan": "short",
                             "department": "surgery", **record}},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        opened = next(
            e
            for e in response.json()["timeline"]
            if e["kind"] == "task_opened" and e["node"] == "call_day3"
        )
        return sorted(opened["candidates"]["users"])

    assert await candidates({"branch": world["pudong"]}) == ["nurse_pd"]
    assert await candidates({"branch": world["xuhui"]}) == ["nurse_xh"]
    assert await candidates({}) == ["nurse_pd", "nurse_xh"]
