"""User and department fields on SQLite and PostgreSQL (platform/people): the directory
lists an app's members by display name for its members only (not an outsider, not an
anonymous caller, not a public link); written values must name a member or a department of
the app; "default: current user" and "default: my department" fill a new record; row
filters compare the fields with `$user.id` and `$user.department`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Forbidden
from formloom.platform.people.service import require_directory
from tests import factories as f
from tests.conftest import TestUser, Users
from tests.platform.test_openapi import component, validator
from tests.platform.test_openapi import document as openapi_document

APP = "ward"
BASE = f"/api/records/{APP}/task"
MINE = {"==": [{"var": "owner"}, {"var": "$user.id"}]}
IN_TEAM = {"in": [{"var": "$user.id"}, {"var": "team"}]}
MY_DEPARTMENT = {"==": [{"var": "ward"}, {"var": "$user.department"}]}


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "task",
            f.field("title", required=True),
            f.field("owner", "user", default_current=True),
            f.field("team", "user", multiple=True),
            f.field("ward", "department", default_current=True),
        ),
        roles=[{"key": "nurse"}, {"key": "head"}, {"key": "doctor"}],
        permissions=[
            {"form": "task", "roles": ["head"], "actions": ["read", "create", "update"]},
            {"form": "task", "roles": ["nurse"], "actions": ["read", "create"], "row_filter": MINE},
            {
                "form": "task",
                "roles": ["doctor"],
                "actions": ["read"],
                "row_filter": {"or": [IN_TEAM, MY_DEPARTMENT]},
            },
        ],
    )


class Staff:
    def __init__(self, **people: TestUser) -> None:
        self.__dict__.update(people)

    head: TestUser
    wang: TestUser
    li: TestUser
    doc: TestUser
    outsider: TestUser


@pytest.fixture
async def staff(client: httpx.AsyncClient, users: Users) -> Staff:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    roles = {APP: ["head"]}
    return Staff(
        head=await users.create("head", roles=roles, display_name="Zhou Min",
                                attributes={"department": "ICU"}),
        wang=await users.create("wang", roles={APP: ["nurse"]}, display_name="Wang Fang",
                                attributes={"department": "ICU"}),
        li=await users.create("lina", roles={APP: ["nurse"]}, display_name="Li Na",
                              attributes={"department": "Surgery"}),
        doc=await users.create("doc", roles={APP: ["doctor"]}, display_name="Dr Chen",
                               attributes={"department": "Cardiology"}),
        outsider=await users.create("outsider", roles={"other": ["nurse"]},
                                    display_name="Olivia Out", attributes={"department": "X"}),
    )  # fmt: skip


async def test_the_directory_lists_members_by_name_as_you_type(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    answer = await client.get(f"/api/apps/{APP}/people", params={"q": "wa"},
                              headers=staff.li.headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == [
        {"id": staff.wang.id, "display_name": "Wang Fang", "username": "wang"}
    ]
    every = await client.get(f"/api/apps/{APP}/people", headers=staff.li.headers)
    names = [item["display_name"] for item in every.json()["items"]]
    assert names == ["Dr Chen", "Li Na", "Wang Fang", "Zhou Min"]  # no outsider, no admin
    # "li" starts Li Na's name and is inside "lina": she comes first
    found = await client.get(f"/api/apps/{APP}/people", params={"q": "LI"},
                             headers=staff.li.headers)  # fmt: skip
    assert [item["username"] for item in found.json()["items"]] == ["lina"]
    named = await client.get(
        f"/api/apps/{APP}/people",
        params={"ids": f"{staff.wang.id},{staff.outsider.id}"},
        headers=staff.li.headers,
    )
    assert [item["display_name"] for item in named.json()["items"]] == ["Wang Fang"]
    departments = await client.get(f"/api/apps/{APP}/departments", headers=staff.li.headers)
    assert departments.json() == {"items": ["Cardiology", "ICU", "Surgery"]}


async def test_only_members_may_read_the_directory(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, staff: Staff
) -> None:
    for path in ("people", "departments"):
        outsider = await client.get(f"/api/apps/{APP}/{path}", headers=staff.outsider.headers)
        assert outsider.status_code == 403
        assert (await anon_client.get(f"/api/apps/{APP}/{path}")).status_code == 401
    # a public (texted) link's caller never reads it, whatever the link grants
    link = Principal(username="public-link:x", via="public_link", roles={APP: frozenset({"head"})})
    with pytest.raises(Forbidden):
        require_directory(link, APP)


async def test_defaults_fill_the_signed_in_person_and_their_department(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    made = await client.post(
        BASE, json={"data": {"title": "turn bed 4"}}, headers=staff.wang.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["data"] == {"title": "turn bed 4", "owner": staff.wang.id, "ward": "ICU"}
    # an admin who holds no role in the app gets no default
    plain = await client.post(BASE, json={"data": {"title": "audit"}})
    assert plain.status_code == 201 and plain.json()["data"] == {"title": "audit"}


async def test_values_must_name_members_and_departments(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    answer = await client.post(
        BASE,
        json={"data": {"title": "t", "owner": staff.outsider.id,
                       "team": [staff.li.id, "nobody"], "ward": "Mars"}},
        headers=staff.head.headers,
    )  # fmt: skip
    assert answer.status_code == 422
    found = {(e["path"], e["code"]) for e in answer.json()["errors"]}
    assert found == {
        ("/data/owner", "user"),
        ("/data/team/1", "user"),
        ("/data/ward", "department"),
    }


async def test_row_filters_compare_with_the_user_and_their_department(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    async def make(who: TestUser, **data: Any) -> str:
        answer = await client.post(BASE, json={"data": data}, headers=who.headers)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["data"]["title"])

    await make(staff.wang, title="wang's")
    await make(staff.li, title="li's")
    await make(staff.head, title="for the team", owner=staff.head.id, team=[staff.doc.id])
    await make(staff.head, title="cardiology", ward="Cardiology")

    async def titles(who: TestUser) -> list[str]:
        answer = await client.get(BASE, params={"sort": "title"}, headers=who.headers)
        assert answer.status_code == 200, answer.text
        return [item["data"]["title"] for item in answer.json()["items"]]

    assert await titles(staff.wang) == ["wang's"]
    assert await titles(staff.li) == ["li's"]
    assert await titles(staff.doc) == ["cardiology", "for the team"]
    assert len(await titles(staff.head)) == 4


async def test_csv_export_names_people_never_ids(client: httpx.AsyncClient, staff: Staff) -> None:
    data = {"title": "t", "owner": staff.wang.id, "team": [staff.li.id, staff.doc.id]}
    made = await client.post(BASE, json={"data": data}, headers=staff.head.headers)
    assert made.status_code == 201, made.text
    answer = await client.get(f"/api/exports/{APP}/task", headers=staff.head.headers)
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "Wang Fang" in text and "Li Na; Dr Chen" in text
    for person in (staff.wang, staff.li, staff.doc):
        assert person.id not in text


async def test_a_public_link_offers_no_people_and_its_records_are_numbered(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, staff: Staff
) -> None:
    document = definition()
    task = document["forms"][0]
    task["fields"].insert(0, f.field("no", "autonumber", format="T-{000}"))
    assert (await client.post("/api/apps/import", json=document)).status_code in (200, 201)
    made = await client.post(f"/api/apps/{APP}/forms/task/links", json={},
                             headers=staff.head.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    url = f"/api/public/{made.json()['token']}"
    form = (await anon_client.get(url)).json()["form"]
    assert [field["key"] for field in form["fields"]] == ["title"]
    refused = await anon_client.post(url, json={"data": {"title": "x", "owner": staff.head.id}})
    assert refused.status_code == 422
    sent = await anon_client.post(url, json={"data": {"title": "from the waiting room"}})
    assert sent.status_code == 201, sent.text
    stored = (await client.get(BASE, headers=staff.head.headers)).json()["items"]
    assert [(item["data"]["title"], item["data"].get("no")) for item in stored] == [
        ("from the waiting room", "T-001")
    ]
    assert "owner" not in stored[0]["data"]  # nobody is signed in: no "current user"


async def test_a_spreadsheet_names_people_by_name_or_username(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    csv = "Title,Owner,Team,Ward\nfirst,Wang Fang,lina; Dr Chen,ICU\nsecond,Nobody,,ICU\n"

    async def send(dry_run: str) -> httpx.Response:
        return await client.post(
            f"{BASE}/import",
            params={"dry_run": dry_run, "skip_bad_rows": "true"},
            files={"file": ("tasks.csv", csv.encode(), "text/csv")},
            headers=staff.head.headers,
        )

    dry = await send("true")
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [(3, "Owner", "user")]
    done = await send("false")
    assert done.status_code == 200, done.text
    [item] = (await client.get(BASE, headers=staff.head.headers)).json()["items"]
    assert item["data"] == {
        "title": "first",
        "owner": staff.wang.id,
        "team": [staff.li.id, staff.doc.id],
        "ward": "ICU",
    }


async def test_problems_speak_the_apps_language(client: httpx.AsyncClient, staff: Staff) -> None:
    document = definition()
    document["locales"] = ["zh-CN", "en"]
    document["forms"][0]["fields"][1]["label"] = {"zh-CN": "负责人", "en": "Owner"}
    assert (await client.post("/api/apps/import", json=document)).status_code in (200, 201)
    answer = await client.post(
        BASE, json={"data": {"title": "t", "owner": "nobody", "ward": "火星"}},
        headers=staff.head.headers,
    )  # fmt: skip
    assert answer.status_code == 422
    messages = {e["path"]: e["message"] for e in answer.json()["errors"]}
    assert messages == {
        "/data/owner": "负责人：本应用没有 id 为“nobody”的成员",
        "/data/ward": "Ward：“火星”不是本应用的部门",
    }


async def test_reports_name_people_and_count_departments(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    for who, title in ((staff.wang, "a"), (staff.wang, "b"), (staff.li, "c")):
        made = await client.post(BASE, json={"data": {"title": title}}, headers=who.headers)
        assert made.status_code == 201, made.text
    spec = {
        "form": "task",
        "rows": [{"field": "owner"}, {"field": "ward"}],
        "measures": [{"key": "n", "op": "count"}],
    }
    answer = await client.post(f"/api/reports/{APP}", json=spec, headers=staff.head.headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    rows = {tuple(row["labels"]): result["cells"][i][0]["values"]["n"]
            for i, row in enumerate(result["rows"]) if not row.get("total")}  # fmt: skip
    assert rows == {("Li Na", "Surgery"): 1, ("Wang Fang", "ICU"): 2}


async def test_the_typed_openapi_document_describes_the_fields(
    client: httpx.AsyncClient, staff: Staff
) -> None:
    document = definition()
    document["forms"][0]["fields"].insert(0, f.field("no", "autonumber", format="T-{000}"))
    assert (await client.post("/api/apps/import", json=document)).status_code in (200, 201)
    doc = await openapi_document(client)
    validate(doc)
    data = component(doc, "WardTaskData")["properties"]
    assert data["no"]["readOnly"] is True and data["no"]["type"] == "string"
    assert data["team"]["type"] == "array" and data["owner"]["type"] == "string"
    made = await client.post(BASE, json={"data": {"title": "t", "owner": staff.li.id}},
                             headers=staff.head.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    record = made.json()
    assert list(validator(doc, "WardTaskRecord").iter_errors(record)) == []
    assert record["data"]["no"] == "T-001"
