"""Dimensions and filters that read a related form's fields (``patient.gender``) read them
through the caller's grant on that form (issue 20): a related field hidden from the caller
is refused wherever the spec names it — dimension, measure, filter, measure filter, any
spelling of the name — with 403 and a pointer, and answers nothing about the hidden values;
a related record the caller's row filter does not admit reads as empty (the filter does not
match it, the dimension groups it as empty), exactly as if there were none; a form the
caller may not read cannot be hopped into. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users

APP = "related_grants"
OWN_WARD = {"==": [{"var": "ward"}, {"var": "$user.ward"}]}


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name"),
            f.field("ward"),
            f.field("gender", "select", options=[{"value": "f"}, {"value": "m"}]),
            f.field("hiv", "boolean"),
            title_field="name",
        ),
        f.form(
            "visit",
            f.field("patient", "relation", target="patient"),
            f.field("fee", "number"),
        ),
        f.form("note", f.field("patient", "relation", target="patient"), f.field("text")),
        roles=[{"key": "nurse"}, {"key": "clerk"}],
        permissions=[  # fmt: skip
            {"form": "visit", "roles": ["nurse", "clerk"], "actions": ["read"]},
            {"form": "patient", "roles": ["nurse"], "actions": ["read"],
             "row_filter": OWN_WARD, "hidden_fields": ["hiv"]},
        ],
    )  # fmt: skip


PATIENTS = [("Ann", "east", "f", True), ("Bea", "east", "f", False), ("Cal", "west", "m", True)]
VISITS = [("Ann", 10), ("Ann", 20), ("Bea", 30), ("Cal", 40), ("Cal", 50), (None, 60)]


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids = {}
    for name, ward, gender, hiv in PATIENTS:
        data = {"name": name, "ward": ward, "gender": gender, "hiv": hiv}
        made = await client.post(f"/api/records/{APP}/patient", json={"data": data})
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    for name, fee in VISITS:
        visit: dict[str, Any] = {"fee": fee}
        if name is not None:
            visit["patient"] = ids[name]
        made = await client.post(f"/api/records/{APP}/visit", json={"data": visit})
        assert made.status_code == 201, made.text
    return client


def spec(**parts: Any) -> dict[str, Any]:
    return {"form": "visit", "measures": [{"key": "n", "op": "count"}], **parts}


def grand(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["grand_total"]["values"]["n"]


async def test_a_filter_reads_a_related_field(clinic: httpx.AsyncClient) -> None:
    women = spec(filter={"==": [{"var": "patient.gender"}, "f"]})
    assert grand(await clinic.post(f"/api/reports/{APP}", json=women)) == 3
    # holds for a visit without a patient too (its patient's gender is empty)
    not_men = spec(filter={"!=": [{"var": "patient.gender"}, "m"]})
    assert grand(await clinic.post(f"/api/reports/{APP}", json=not_men)) == 4
    both = spec(
        filter={"and": [{"==": [{"var": "patient.gender"}, "f"]}, {">": [{"var": "fee"}, 15]}]}
    )
    assert grand(await clinic.post(f"/api/reports/{APP}", json=both)) == 2
    mixed = spec(
        filter={"or": [{"==": [{"var": "patient.gender"}, "f"]}, {">": [{"var": "fee"}, 45]}]}
    )
    answer = await clinic.post(f"/api/reports/{APP}", json=mixed)
    assert answer.status_code == 422, answer.text
    assert [(e["path"], e["code"]) for e in answer.json()["errors"]] == [
        ("/filter", "related_filter_mixed")
    ]
    unknown = spec(filter={"==": [{"var": "patient.nope"}, 1]})
    answer = await clinic.post(f"/api/reports/{APP}", json=unknown)
    assert answer.status_code == 422 and answer.json()["errors"][0]["path"] == "/filter"


async def test_related_rows_the_caller_may_not_read_are_empty(
    clinic: httpx.AsyncClient, users: Users
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"ward": "east"})
    # Cal (west) is not hers: his visits have no readable patient, so no gender
    women = spec(filter={"==": [{"var": "patient.gender"}, "f"]})
    answer = await clinic.post(f"/api/reports/{APP}", json=women, headers=nurse.headers)
    assert grand(answer) == 3
    men = spec(filter={"==": [{"var": "patient.gender"}, "m"]})
    assert grand(await clinic.post(f"/api/reports/{APP}", json=men, headers=nurse.headers)) == 0
    assert grand(await clinic.post(f"/api/reports/{APP}", json=men)) == 2  # the admin sees Cal
    by_gender = spec(rows=[{"field": "patient.gender"}])
    answer = await clinic.post(f"/api/reports/{APP}", json=by_gender, headers=nurse.headers)
    result = answer.json()["result"]
    groups = {
        tuple(r["keys"]): c[0]["values"]["n"]
        for r, c in zip(result["rows"], result["cells"], strict=True)
    }
    assert groups == {("f",): 3, (None,): 3}  # Cal's two visits and the one without a patient
    # the drill-down of "empty" agrees: a link to the visits of no readable patient
    drill = await clinic.post(
        f"/api/reports/{APP}/drill",
        json={"spec": men, "row": [], "column": []},
        headers=nurse.headers,
    )
    assert drill.status_code == 200, drill.text


@pytest.mark.parametrize(
    ("parts", "pointer"),
    [
        ({"rows": [{"field": "patient.hiv"}]}, "/rows/0/field"),
        ({"filter": {"==": [{"var": "patient.hiv"}, True]}}, "/filter"),
        ({"filter": {"and": [{">": [{"var": "fee"}, 0]}, {"var": "patient.hiv"}]}}, "/filter"),
        ({"filter": {"==": [{"var": ["patient.hiv", False]}, True]}}, "/filter"),
        ({"filter": {"==": [{"var": {"cat": ["patient.", "hiv"]}}, True]}}, "/filter"),
        ({"filter": {"==": [{"var": {"cat": ["patient.", {"var": "fee"}]}}, True]}}, "/filter"),
        (
            {"measures": [{"key": "n", "op": "count", "filter": {"var": "patient.hiv"}}]},
            "/measures/0/filter",
        ),
        ({"measures": [{"key": "n", "op": "sum", "field": "patient.hiv"}]}, "/measures/0/field"),
    ],
)
async def test_a_hidden_related_field_is_refused_wherever_named(
    clinic: httpx.AsyncClient, users: Users, parts: dict[str, Any], pointer: str
) -> None:
    """The attack: a nurse may read her patients but not their HIV status. Grouping,
    counting or filtering visits by it would tell her (3 of 6 visits are by HIV-positive
    patients) — every spelling is a 403 pointing at the part, naming nothing hidden."""
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"ward": "east"})
    answer = await clinic.post(f"/api/reports/{APP}", json=spec(**parts), headers=nurse.headers)
    from_data = "'cat': ['patient.', {" in str(parts)  # a name computed from data: never usable
    assert answer.status_code == (422 if from_data else 403), answer.text
    body = answer.json()
    assert any(e["path"].startswith(pointer) for e in body["errors"]), body
    assert "result" not in body
    drill = await clinic.post(
        f"/api/reports/{APP}/drill",
        json={"spec": spec(**parts), "row": [], "column": []},
        headers=nurse.headers,
    )
    assert drill.status_code == (422 if from_data else 403), drill.text
    # the admin may (a related name written as an expression is not read through the hop:
    # a 422 with the pointer, for anyone)
    admin = await clinic.post(f"/api/reports/{APP}", json=spec(**parts))
    computed = "cat" in str(parts)
    assert admin.status_code == (422 if computed else 200), admin.text
    if computed:
        assert admin.json()["errors"][0]["path"].startswith(pointer)


async def test_a_form_the_caller_may_not_read_cannot_be_hopped_into(
    clinic: httpx.AsyncClient, users: Users
) -> None:
    clerk = await users.create("carl", roles={APP: ["clerk"]})  # visits only, no patients
    for parts, pointer in [
        ({"filter": {"==": [{"var": "patient.gender"}, "f"]}}, "/filter"),
        ({"rows": [{"field": "patient.gender"}]}, "/rows/0/field"),
    ]:
        answer = await clinic.post(f"/api/reports/{APP}", json=spec(**parts), headers=clerk.headers)
        assert answer.status_code == 403, answer.text
        assert answer.json()["errors"][0]["path"] == pointer
