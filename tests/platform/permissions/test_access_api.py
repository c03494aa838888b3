"""The access screen's API (``/api/apps/{app}/forms/{form}/access``, issue 17 item 2).

The clinic's head office (a designer, not a platform admin) builds a "feedback" form that
no grant names: the nurse is refused, the API proposes a starting grant. The head office
gives nurses read, create and export within their branch, with an internal note hidden;
then a Xuhui nurse reads, lists, queries, reports on and exports Xuhui's feedback only, and
every door to a Pudong record (by id, /query, an ad-hoc report, the CSV export) is shut or
filtered. Who may change access, what the endpoint may change (this form's grants only),
errors pointed into the body, dry run, If-Match, the audit rows and rollback. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models import AuditEntry
from tests.platform.permissions.helpers import as_user, make_user
from tests.platform.permissions.test_clinic_branches import created, two_branches
from tests.platform.permissions.test_clinic_matrix import APP

FORM = "feedback"
URL = f"/api/apps/{APP}/forms/{FORM}/access"
FEEDBACK = {
    "label": {"en": "Feedback", "zh-CN": "意见反馈"},
    "title_field": "subject",
    "fields": [
        {"key": "subject", "type": "text", "required": True},
        {"key": "branch", "type": "relation", "target": "branch"},
        {"key": "details", "type": "textarea"},
        {"key": "internal_note", "type": "text"},
    ],
}
SAME_BRANCH = {"==": [{"var": "branch"}, {"var": "$user.branch"}]}
NURSE_GRANT = {
    "roles": ["nurse"],
    "actions": ["create", "read", "export"],
    "row_filter": SAME_BRANCH,
    "hidden_fields": ["internal_note"],
}
ALL = ["create", "read", "update", "delete", "export"]


async def feedback_world(client: httpx.AsyncClient) -> dict[str, Any]:
    """The clinic with two branches, a Xuhui nurse, and the head office's new form."""
    world = await two_branches(client)
    world["tokens"]["nurse_xh"] = await make_user(
        client, "nurse_xh", roles={APP: ["nurse"]},
        attributes={"branch": world["xuhui"], "department": "surgery"},
    )  # fmt: skip
    async with as_user(client, world["tokens"]["head"]) as head:
        made = await head.put(f"/api/apps/{APP}/forms/{FORM}", json=FEEDBACK)
        assert made.status_code in (200, 201), made.text
    return world


async def revision(client: httpx.AsyncClient) -> int:
    return int((await client.get(f"/api/apps/{APP}")).json()["revision"])


async def test_a_new_form_proposes_a_grant_and_a_save_lets_the_nurse_in(
    client: httpx.AsyncClient, db: Database
) -> None:
    world = await feedback_world(client)
    async with (
        as_user(client, world["tokens"]["head"]) as head,
        as_user(client, world["tokens"]["nurse_xh"]) as nurse,
    ):
        refused = await nurse.get(f"/api/records/{APP}/{FORM}")
        assert refused.status_code == 403, refused.text
        assert "do not allow you to read" in refused.json()["detail"]

        read = await head.get(URL)
        assert read.status_code == 200, read.text
        view = read.json()
        assert view["grants"] == []
        assert view["shared"] == [{"form": "*", "roles": ["admin"], "actions": ALL}]
        # head office designs the app (admin has everything through "*"); the roles that
        # read other forms are proposed read
        assert view["proposal"] == [
            {"form": FORM, "roles": ["head_office"], "actions": ALL},
            {"form": FORM, "roles": ["manager", "doctor", "nurse", "front_desk"],
             "actions": ["read"]},
        ]  # fmt: skip
        assert [f["key"] for f in view["fields"]] == ["subject", "branch", "details",
                                                      "internal_note"]  # fmt: skip
        assert {r["key"]: r["designer"] for r in view["roles"]}["head_office"] is True
        assert read.headers["ETag"] == f'"{view["revision"]}"'
        assert "$user.branch" in view["user_values"]

        body = [NURSE_GRANT, {"roles": ["head_office"], "actions": ALL}]
        plan = await head.put(f"{URL}?dry_run=true", json=body)
        assert plan.status_code == 200, plan.text
        assert plan.json()["dry_run"] is True
        assert (await nurse.get(f"/api/records/{APP}/{FORM}")).status_code == 403
        assert await revision(client) == view["revision"]

        stale = await head.put(URL, json=body, headers={"If-Match": f'"{view["revision"] - 1}"'})
        assert stale.status_code == 412, stale.text
        saved = await head.put(URL, json=body, headers={"If-Match": f'"{view["revision"]}"'})
        assert saved.status_code == 200, saved.text
        assert saved.json()["revision"] == view["revision"] + 1
        assert saved.headers["ETag"] == f'"{view["revision"] + 1}"'
        again = (await head.get(URL)).json()
        designers = {"form": FORM, "roles": ["head_office"], "actions": ALL}
        assert again["grants"] == [{"form": FORM, **NURSE_GRANT}, designers]
        assert again["proposal"] is None
        # the same grants again change nothing: no new revision
        same = await head.put(URL, json=again["grants"])
        assert same.status_code == 200 and same.json()["status"] == "unchanged"

        # the nurse creates and reads her branch's feedback, without the internal note
        mine = await created(nurse, FORM, {"subject": "Long wait", "branch": world["xuhui"]})
        assert "internal_note" not in mine["data"]
        hidden = await nurse.post(
            f"/api/records/{APP}/{FORM}",
            json={"data": {"subject": "x", "branch": world["xuhui"], "internal_note": "no"}},
        )
        assert hidden.status_code == 422, hidden.text
        assert hidden.json()["errors"][0]["path"] == "/data/internal_note"
        elsewhere = await nurse.post(
            f"/api/records/{APP}/{FORM}", json={"data": {"subject": "x", "branch": world["pudong"]}}
        )
        assert elsewhere.status_code == 403, elsewhere.text
        # she may read, not update: that was not granted
        patch = await nurse.patch(
            f"/api/records/{APP}/{FORM}/{mine['id']}", json={"data": {"details": "more"}}
        )
        assert patch.status_code == 403, patch.text

    async with db.transaction(write=False) as session:
        rows = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail)
                .where(AuditEntry.app == APP, AuditEntry.actor == "head")
                .where(AuditEntry.action.in_(["app.access_saved", "app.permissions_changed"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(action, outcome) for action, outcome, _ in rows] == [
        ("app.access_saved", "failed"),  # the stale save
        ("app.access_saved", "ok"),
        ("app.permissions_changed", "ok"),
    ]
    assert rows[1][2]["form"] == FORM and rows[1][2]["grants"] == 2
    assert {"form": FORM, **NURSE_GRANT} in rows[2][2]["permissions"]


async def test_the_row_filter_holds_on_every_door(client: httpx.AsyncClient) -> None:
    world = await feedback_world(client)
    async with as_user(client, world["tokens"]["head"]) as head:
        saved = await head.put(URL, json=[NURSE_GRANT])
        assert saved.status_code == 200, saved.text
    ours = [
        await created(client, FORM, {"subject": f"Xuhui {i}", "branch": world["xuhui"],
                                     "internal_note": f"SECRET-XH-{i}"})
        for i in range(2)
    ]  # fmt: skip
    theirs = await created(
        client, FORM, {"subject": "Pudong 0", "branch": world["pudong"],
                       "internal_note": "SECRET-PD-0"},
    )  # fmt: skip
    base = f"/api/records/{APP}/{FORM}"

    def clean(response: httpx.Response) -> None:
        assert "Pudong 0" not in response.text, response.request.url
        assert "SECRET" not in response.text, response.request.url

    async with as_user(client, world["tokens"]["nurse_xh"]) as nurse:
        listed = await nurse.get(base, params={"count": "true"})
        assert listed.status_code == 200, listed.text
        subjects = sorted(r["data"]["subject"] for r in listed.json()["items"])
        assert subjects == ["Xuhui 0", "Xuhui 1"]
        assert listed.json()["count"] == 2
        clean(listed)
        own = await nurse.get(f"{base}/{ours[0]['id']}")
        assert own.status_code == 200 and "internal_note" not in own.json()["data"]
        for path in (f"{base}/{theirs['id']}", f"{base}/{theirs['id']}/history"):
            answer = await nurse.get(path)
            assert answer.status_code == 404, (path, answer.text)
            clean(answer)
        queried = await nurse.post(
            f"{base}/query", json={"filter": {"in": ["Pudong", {"var": "subject"}]}, "count": True}
        )
        assert queried.status_code == 200 and queried.json()["count"] == 0
        clean(queried)
        everything = await nurse.post(f"{base}/query", json={})
        assert everything.status_code == 200, everything.text
        assert len(everything.json()["items"]) == 2
        clean(everything)
        # the hidden field cannot be filtered on (to guess its values)
        probe = await nurse.post(
            f"{base}/query", json={"filter": {"==": [{"var": "internal_note"}, "SECRET-PD-0"]}}
        )
        assert probe.status_code == 400, probe.text
        report = await nurse.post(
            f"/api/reports/{APP}",
            json={"form": FORM, "rows": [{"field": "subject"}],
                  "measures": [{"key": "n", "op": "count"}]},
        )  # fmt: skip
        assert report.status_code == 200, report.text
        keys = sorted(row["keys"][0] for row in report.json()["result"]["rows"])
        assert keys == ["Xuhui 0", "Xuhui 1"]
        clean(report)
        by_branch = await nurse.post(
            f"/api/reports/{APP}",
            json={"form": FORM, "measures": [{"key": "n", "op": "count"}],
                  "filter": {"==": [{"var": "branch"}, world["pudong"]]}},
        )  # fmt: skip
        assert by_branch.status_code == 200, by_branch.text
        assert by_branch.json()["result"]["grand_total"]["values"]["n"] in (0, None)
        on_hidden = await nurse.post(
            f"/api/reports/{APP}",
            json={"form": FORM, "rows": [{"field": "internal_note"}],
                  "measures": [{"key": "n", "op": "count"}]},
        )  # fmt: skip
        assert on_hidden.status_code == 403, on_hidden.text
        clean(on_hidden)
        exported = await nurse.get(f"/api/exports/{APP}/{FORM}")
        assert exported.status_code == 200, exported.text
        assert "Xuhui 0" in exported.text and "Xuhui 1" in exported.text
        assert "internal_note" not in exported.text.splitlines()[0].lower().replace(" ", "_")
        clean(exported)
    # Pudong's desk has no grant on the form at all
    async with as_user(client, world["tokens"]["desk_pd"]) as desk:
        assert (await desk.get(base)).status_code == 403


async def test_only_designers_change_access_and_only_this_forms(
    client: httpx.AsyncClient,
) -> None:
    world = await feedback_world(client)
    before = (await client.get(f"/api/apps/{APP}/export")).json()
    for who in ("nurse_xh", "manager_xh", "desk_xh"):
        async with as_user(client, world["tokens"][who]) as caller:
            assert (await caller.get(URL)).status_code == 403
            refused = await caller.put(
                URL, json=[{"roles": [who.split("_")[0]], "actions": ["read"]}]
            )
            assert refused.status_code == 403, refused.text
    stranger = await make_user(client, "stranger")
    async with as_user(client, stranger) as caller:
        assert (await caller.get(URL)).status_code == 403
    async with as_user(client, world["tokens"]["head"]) as head:
        assert (await head.get(f"/api/apps/{APP}/forms/nope/access")).status_code == 404
        other = await head.put(
            URL,
            json=[NURSE_GRANT, {"form": "patient", "roles": ["nurse"], "actions": ["delete"]},
                  {"form": "*", "roles": ["nurse"], "actions": ALL}],
        )  # fmt: skip
        assert other.status_code == 422, other.text
        assert [e["path"] for e in other.json()["errors"]] == ["/1/form", "/2/form"]
        # a grant cannot carry the app's design list or roles: unknown properties
        sneaky = await head.put(
            URL, json=[{"roles": ["nurse"], "actions": ["read"], "design": ["nurse"]}]
        )
        assert sneaky.status_code == 422, sneaky.text
        assert [e["path"] for e in sneaky.json()["errors"]] == ["/0/design"]
        wrong = await head.put(
            URL,
            json=[NURSE_GRANT, {"roles": ["intern"], "actions": ["read"],
                                "hidden_fields": ["subject", "nope"],
                                "row_filter": {"==": [{"var": "$env.x"}, 1]}}],
        )  # fmt: skip
        assert wrong.status_code == 422, wrong.text
        paths = {e["path"] for e in wrong.json()["errors"]}
        assert {"/1/roles/0", "/1/hidden_fields/1"} <= paths, paths
        assert all(p.startswith("/1/") for p in paths), paths
        assert not any(e.get("in") == "app" for e in wrong.json()["errors"])
        not_a_list = await head.put(URL, json={"roles": ["nurse"]})
        assert not_a_list.status_code == 422
    after = (await client.get(f"/api/apps/{APP}/export")).json()
    assert after["permissions"] == before["permissions"]
    assert after["design"] == before["design"] and after["roles"] == before["roles"]


async def test_other_grants_keep_their_place_and_rollback_restores(
    client: httpx.AsyncClient,
) -> None:
    world = await feedback_world(client)
    start = await revision(client)
    async with as_user(client, world["tokens"]["head"]) as head:
        # the clinic's own complaint grants: replaced in place, the others untouched
        shipped = (await client.get(f"/api/apps/{APP}/export")).json()["permissions"]
        complaint = [g for g in shipped if g["form"] == "complaint"]
        first = shipped.index(complaint[0])
        view = (await head.get(f"/api/apps/{APP}/forms/complaint/access")).json()
        assert view["grants"] == complaint and view["proposal"] is None
        changed = [{**complaint[0], "actions": ["read"]}]
        saved = await head.put(f"/api/apps/{APP}/forms/complaint/access", json=changed)
        assert saved.status_code == 200, saved.text
        now = (await client.get(f"/api/apps/{APP}/export")).json()["permissions"]
        others = [g for g in shipped if g["form"] != "complaint"]
        assert now == others[:first] + changed + others[first:]
        # a first grant for the new form goes after the others
        added = await head.put(URL, json=[NURSE_GRANT])
        assert added.status_code == 200, added.text
        assert (await client.get(f"/api/apps/{APP}/export")).json()["permissions"][-1] == {
            "form": FORM,
            **NURSE_GRANT,
        }
        # an empty list removes the form's grants
        emptied = await head.put(URL, json=[])
        assert emptied.status_code == 200, emptied.text
        assert (await head.get(URL)).json()["grants"] == []
    back = await client.post(f"/api/apps/{APP}/rollback?to={start + 2}")
    assert back.status_code == 200, back.text
    async with as_user(client, world["tokens"]["nurse_xh"]) as nurse:
        assert (await nurse.get(f"/api/records/{APP}/{FORM}")).status_code == 200
    back = await client.post(f"/api/apps/{APP}/rollback?to={start}")
    assert back.status_code == 200, back.text
    assert (await client.get(f"/api/apps/{APP}/export")).json()["permissions"] == shipped
    async with as_user(client, world["tokens"]["nurse_xh"]) as nurse:
        assert (await nurse.get(f"/api/records/{APP}/{FORM}")).status_code == 403
