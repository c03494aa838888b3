"""Public links: one submission to one form, optionally bound to a record, until expiry."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from formloom.platform.clock import FixedClock
from tests import factories as f
from tests.platform.permissions.helpers import as_user, make_user

SURVEY_APP = f.app(
    "clinic",
    f.form("visit", f.field("department", required=True), f.field("note")),
    f.form(
        "survey",
        f.field("visit", "relation", target="visit", required=True),
        f.field("score", "integer", min=0, max=10, required=True),
        f.field("comment"),
    ),
    roles=[{"key": "front_desk"}, {"key": "doctor"}],
    permissions=[
        {"form": "survey", "roles": ["front_desk"], "actions": ["create", "read"]},
        {"form": "visit", "roles": ["front_desk"], "actions": ["read"]},
        {"form": "visit", "roles": ["doctor"], "actions": ["read"]},
    ],
)


async def setup(client: httpx.AsyncClient) -> tuple[str, str]:
    """The app, one visit, and a front-desk user's token."""
    assert (await client.post("/api/apps/import", json=SURVEY_APP)).status_code == 201
    visit = await client.post(
        "/api/records/clinic/visit", json={"data": {"department": "surgery", "note": "SECRET"}}
    )
    token = await make_user(client, "desk", roles={"clinic": ["front_desk"]})
    return visit.json()["id"], token


async def new_link(desk: httpx.AsyncClient, visit: str, **extra: Any) -> dict[str, Any]:
    response = await desk.post(
        "/api/apps/clinic/forms/survey/links",
        json={"bind": {"field": "visit", "record": visit}, "label": "After your visit", **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_link_allows_exactly_one_submission_bound_to_the_visit(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    visit, token = await setup(client)
    async with as_user(client, token) as desk:
        link = await new_link(desk, visit)
    assert link["state"] == "active" and link["token"].startswith(link["id"] + ".")

    form = await anon_client.get(f"/api/public/{link['token']}")
    assert form.status_code == 200
    keys = [field["key"] for field in form.json()["form"]["fields"]]
    assert keys == ["score", "comment"]  # the bound field is the link's, not the patient's
    assert "SECRET" not in form.text and visit not in form.text

    sent = await anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": 9}})
    assert sent.status_code == 201, sent.text
    assert set(sent.json()) == {"status", "submitted_at"}  # no record, no id

    again = await anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": 1}})
    assert again.status_code == 410
    assert (await anon_client.get(f"/api/public/{link['token']}")).status_code == 410

    surveys = (await client.get("/api/records/clinic/survey")).json()["items"]
    assert len(surveys) == 1
    assert surveys[0]["data"] == {"visit": visit, "score": 9}
    assert surveys[0]["created_by"] == f"public-link:{link['id']}"

    audit = (await client.get("/api/audit", params={"action": "public_link."})).json()
    assert {row["action"] for row in audit["items"]} == {
        "public_link.created",
        "public_link.submitted",
    }


async def test_an_invalid_submission_does_not_use_the_link_up(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    visit, token = await setup(client)
    async with as_user(client, token) as desk:
        link = await new_link(desk, visit)
    bad = await anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": 11}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "/data/score"
    forced = await anon_client.post(
        f"/api/public/{link['token']}", json={"data": {"score": 5, "visit": "0" * 32}}
    )
    assert forced.status_code == 422
    assert forced.json()["errors"][0]["code"] == "forbidden_field"
    good = await anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": 5}})
    assert good.status_code == 201


async def test_two_simultaneous_submissions_give_one_record(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    visit, token = await setup(client)
    async with as_user(client, token) as desk:
        link = await new_link(desk, visit)
    answers = await asyncio.gather(
        *[
            anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": n}})
            for n in range(4)
        ]
    )
    assert sorted(a.status_code for a in answers) == [201, 410, 410, 410]
    assert len((await client.get("/api/records/clinic/survey")).json()["items"]) == 1


async def test_expired_revoked_forged_and_unknown_links(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clock: FixedClock
) -> None:
    visit, token = await setup(client)
    async with as_user(client, token) as desk:
        short = await new_link(desk, visit, expires_in_hours=1)
        withdrawn = await new_link(desk, visit)
        gone = await desk.delete(f"/api/apps/clinic/forms/survey/links/{withdrawn['id']}")
        assert gone.status_code == 204
        listed = {
            link["id"]: link["state"]
            for link in (await desk.get("/api/apps/clinic/forms/survey/links")).json()
        }
        assert listed == {short["id"]: "active", withdrawn["id"]: "revoked"}
        assert all(
            "token" not in link
            for link in (await desk.get("/api/apps/clinic/forms/survey/links")).json()
        )
    assert (await anon_client.get(f"/api/public/{withdrawn['token']}")).status_code == 410

    clock.advance(hours=2)
    expired = await anon_client.post(f"/api/public/{short['token']}", json={"data": {"score": 3}})
    assert expired.status_code == 410

    forged = short["id"] + ".not-the-secret"
    assert (await anon_client.get(f"/api/public/{forged}")).status_code == 404
    assert (await anon_client.get("/api/public/nonsense")).status_code == 404
    assert (await anon_client.post("/api/public/x.y", json={"data": {}})).status_code == 404


async def test_who_may_create_links_and_what_they_may_bind(client: httpx.AsyncClient) -> None:
    visit, token = await setup(client)
    doctor = await make_user(client, "doc", roles={"clinic": ["doctor"]})
    async with as_user(client, doctor) as doc:
        refused = await doc.post("/api/apps/clinic/forms/survey/links", json={})
        assert refused.status_code == 403  # doctors may not create surveys
    async with as_user(client, token) as desk:
        for body, path in [
            ({"bind": {"field": "score", "record": visit}}, "/bind/field"),
            ({"bind": {"field": "visit", "record": "nope"}}, "/bind/record"),
            ({"expires_in_hours": 0}, "/expires_in_hours"),
            ({"expires_in_hours": 10_000}, "/expires_in_hours"),
            ({"colour": "red"}, "/colour"),
        ]:
            response = await desk.post("/api/apps/clinic/forms/survey/links", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["errors"][0]["path"] == path
        missing = await desk.post(
            "/api/apps/clinic/forms/survey/links",
            json={"bind": {"field": "visit", "record": "0" * 32}},
        )
        assert missing.status_code == 404
