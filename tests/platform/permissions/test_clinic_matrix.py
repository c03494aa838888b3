"""The permission matrix of the clinic CRM, generated from its own definition.

For every role the app declares, a user holding only that role (with a department, a branch
and a staff record, which the row filters read) calls every record endpoint on every form:
list + count, query, read, history, create, update, delete. The expected outcome of each
call is worked out here from the definition's `permissions` alone — which actions a role's
grants allow, which seeded rows their row filters admit (evaluated in Python, not SQL), which
fields they hide — and compared with what the service answers, on SQLite and PostgreSQL.

Every response body of every call is also searched for the values of the fields hidden from
the role (each seeded with a unique "canary" value): a hidden value must never appear, in
records, lists, history snapshots or error messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from formloom import builtin_apps
from formloom.engines.logic import evaluate
from formloom.engines.logic.coercion import truthy
from tests.platform.permissions.helpers import make_user

APP = "clinic_crm"
DEFINITION: dict[str, Any] = json.loads(builtin_apps.path(APP).read_text(encoding="utf-8"))
ROLES = [role["key"] for role in DEFINITION["roles"]]
FORMS = [form["key"] for form in DEFINITION["forms"]]
ACTIONS = ("create", "read", "update", "delete", "export")
HOME = "surgery"
ELSEWHERE = "dental"

# Unique values for every field some role may not see; searched for in every response.
CANARIES: dict[tuple[str, str], Any] = {
    ("staff", "email"): "canary.staff.email@example.org",
    ("staff", "phone"): "+86 139 7777 1234",
    ("patient", "id_number"): "11010519491231771X",
    ("patient", "allergies"): "CANARY-ALLERGY-penicillin",
    ("patient", "notes"): "CANARY-NOTES-private",
    ("visit", "complaint"): "CANARY-COMPLAINT-chest",
    ("visit", "diagnosis"): "CANARY-DIAGNOSIS-angina",
    ("visit", "systolic"): 287,
    ("visit", "diastolic"): 193,
    ("visit", "weight_kg"): 123.456,
    ("visit", "height_cm"): 171.717,
    ("visit", "procedures"): [{"item": "CANARY-PROCEDURE-ecg", "quantity": 3}],
}
# A change each form's updaters can make that touches no canary.
PATCHES: dict[str, list[tuple[str, Any]]] = {
    "branch": [("address", "1 Matrix Road")],
    "staff": [("name", "Dr Renamed")],
    "patient": [("gender", "other"), ("due_date", "2027-03-01")],
    "appointment": [("reason", "moved by the matrix test")],
    "visit": [("visit_type", "checkup"), ("total_fee", 321.5), ("follow_up_needed", False)],
    "survey": [("comment", "edited by the matrix test")],
    "follow_up": [("status", "done")],
    "complaint": [("description", "edited by the matrix test")],
    "consultation": [("question", "edited by the matrix test")],
}


def grants(role: str, form: str) -> list[dict[str, Any]]:
    return [g for g in DEFINITION["permissions"] if role in g["roles"] and g["form"] in (form, "*")]


def substitute(rule: Any, user: dict[str, Any]) -> Any:
    if isinstance(rule, list):
        return [substitute(item, user) for item in rule]
    if isinstance(rule, dict):
        if set(rule) == {"var"}:
            path = rule["var"]
            name, default = (path[0], path[1]) if isinstance(path, list) else (path, None)
            if str(name).startswith("$user."):
                value = user.get(str(name).removeprefix("$user."))
                return default if value is None else value
        return {op: substitute(args, user) for op, args in rule.items()}
    return rule


@dataclass
class Expect:
    """What the definition says one role may do on one form."""

    role: str
    form: str
    user: dict[str, Any]

    def allows(self, action: str) -> bool:
        return any(action in g["actions"] for g in grants(self.role, self.form))

    def admits(self, action: str, record: dict[str, Any]) -> bool:
        values = {**record["data"], "created_by": record["created_by"], "id": record["id"]}
        for g in grants(self.role, self.form):
            if action not in g["actions"]:
                continue
            rule = g.get("row_filter")
            if rule is None or truthy(evaluate(substitute(rule, self.user), values)):
                return True
        return False

    def status(self, action: str, record: dict[str, Any], ok: int) -> int:
        """403 without the action, 404 for a row outside the caller's filter, else ``ok``."""
        if not self.allows(action):
            return 403
        return ok if self.admits(action, record) else 404

    def hidden(self) -> set[str]:
        readers = [g for g in grants(self.role, self.form) if "read" in g["actions"]]
        if not readers:
            return set()
        return set.intersection(*[set(g.get("hidden_fields", [])) for g in readers])

    def writable(self, key: str) -> bool:
        writers = [g for g in grants(self.role, self.form) if "update" in g["actions"]]
        return any(
            key not in g.get("read_only_fields", []) and key not in g.get("hidden_fields", [])
            for g in writers
        )


@dataclass
class Calls:
    """Every response one role got, for the leak check."""

    client: httpx.AsyncClient
    bodies: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.bodies.append((f"{method} {url} -> {response.status_code}", response.text))
        return response


async def seed(admin: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """Two of everything: one in the home department (surgery) and branch (Xuhui), one
    elsewhere (dental, Pudong)."""

    async def create(form: str, data: dict[str, Any]) -> dict[str, Any]:
        response = await admin.post(f"/api/records/{APP}/{form}", json={"data": data})
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()
        return record

    def canaries(form: str) -> dict[str, Any]:
        return {key: value for (f, key), value in CANARIES.items() if f == form}

    branches = [
        await create("branch", {"name": name, "code": code, "timezone": "Asia/Shanghai"})
        for name, code in (("Xuhui", "XH"), ("Pudong", "PD"))
    ]
    doctors = [
        await create(
            "staff",
            {"name": f"Dr {dept}", "role": "doctor", "department": dept, **canaries("staff")}
            if dept == HOME
            else {"name": f"Dr {dept}", "role": "doctor", "department": dept},
        )
        for dept in (HOME, ELSEWHERE)
    ]
    patients = [
        await create(
            "patient",
            {
                "name": "Wang Fang",
                "phone": "13900000001",
                "tags": ["allergy", "pregnant"],
                "due_date": "2027-01-15",
                "branch": branches[0]["id"],
                **canaries("patient"),
            },
        ),
        await create(
            "patient", {"name": "Li Lei", "phone": "13900000002", "branch": branches[1]["id"]}
        ),
    ]
    appointments = [
        await create(
            "appointment",
            {
                "patient": patients[i]["id"],
                "doctor": doctors[i]["id"],
                "department": dept,
                "starts_at": f"2026-12-0{i + 1}T09:00:00Z",
            },
        )
        for i, dept in enumerate((HOME, ELSEWHERE))
    ]
    visits = [
        await create(
            "visit",
            {
                "patient": patients[i]["id"],
                "doctor": doctors[i]["id"],
                "department": dept,
                "visit_date": "2026-11-20",
                "visit_type": "first",
                **canaries("visit"),
            },
        )
        for i, dept in enumerate((HOME, ELSEWHERE))
    ]
    surveys = [
        await create("survey", {"visit": visits[i]["id"], "nps": 9 - 5 * i, "satisfaction": 4})
        for i in range(2)
    ]
    follow_ups = [
        await create(
            "follow_up",
            {
                "visit": visits[i]["id"],
                "patient": patients[i]["id"],
                "department": dept,
                "due_date": "2026-11-27",
            },
        )
        for i, dept in enumerate((HOME, ELSEWHERE))
    ]
    complaints = [
        await create(
            "complaint",
            {
                "summary": f"Long wait in {dept}",
                "patient": patients[i]["id"],
                "phone": "13900000001",
                "channel": "phone",
                "description": "Waited two hours",
                "department": dept,
            },
        )
        for i, dept in enumerate((HOME, ELSEWHERE))
    ]
    consultations = [
        await create(
            "consultation",
            {
                "topic": f"Second opinion from {dept}",
                "patient": patients[i]["id"],
                "requested_by": doctors[i]["id"],
                "departments": [dept],
                "question": "Operate or wait?",
            },
        )
        for i, dept in enumerate((HOME, ELSEWHERE))
    ]
    return {
        "branch": branches,
        "staff": doctors,
        "patient": patients,
        "appointment": appointments,
        "visit": visits,
        "survey": surveys,
        "follow_up": follow_ups,
        "complaint": complaints,
        "consultation": consultations,
    }


def new_record(form: str, seeded: dict[str, list[dict[str, Any]]], user: dict[str, Any]) -> Any:
    """A valid new record of ``form`` made of fields no role is denied, in the user's rows."""
    doctor = seeded["staff"][0]["id"]
    patient = seeded["patient"][0]["id"]  # in the user's branch (the record's branch is hers)
    visit = seeded["visit"][0]["id"]
    return {
        "branch": {"name": "Minhang", "code": "MH", "timezone": "Asia/Shanghai"},
        "survey": {"visit": visit, "nps": 10, "satisfaction": 5},
        "follow_up": {
            "visit": visit,
            "patient": patient,
            "department": user["department"],
            "due_date": "2026-12-01",
        },
        "staff": {"name": "Nurse New", "role": "nurse", "department": user["department"]},
        "patient": {"name": "Zhao Min", "phone": "13900000009"},
        "appointment": {
            "patient": patient,
            "doctor": doctor,
            "department": user["department"],
            "starts_at": "2026-12-09T10:00:00Z",
        },
        "visit": {
            "patient": patient,
            "doctor": doctor,
            "department": user["department"],
            "visit_date": "2026-11-22",
            "visit_type": "checkup",
        },
        "complaint": {
            "summary": "Rude on the phone",
            "patient": patient,
            "phone": "13900000009",
            "channel": "phone",
            "description": "The caller was rude",
        },
        "consultation": {
            "topic": "Rash after surgery",
            "patient": patient,
            "requested_by": doctor,
            "departments": [user["department"]],
            "question": "Allergy or infection?",
        },
    }[form]


def leaks(role: str, bodies: list[tuple[str, str]]) -> list[str]:
    found = []
    for form in FORMS:
        hidden = Expect(role, form, {}).hidden()
        for (canary_form, key), value in CANARIES.items():
            if canary_form != form or key not in hidden:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            if isinstance(value, list):
                text = value[0]["item"]
            pattern = (
                re.escape(text) if isinstance(value, str | list) else rf"\b{re.escape(text)}\b"
            )
            for what, body in bodies:
                if re.search(pattern, body):
                    found.append(f"{form}.{key} ({text}) in {what}")
    return found


@pytest.mark.parametrize("role", ROLES)
async def test_role_matrix(client: httpx.AsyncClient, role: str) -> None:
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    seeded = await seed(client)
    user = {
        "department": HOME,
        "staff_id": seeded["staff"][0]["id"],
        "branch": seeded["branch"][0]["id"],
    }
    token = await make_user(client, f"matrix_{role}", roles={APP: [role]}, attributes=user)
    caller = httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {token}"},
    )
    call = Calls(caller)
    outcomes: list[str] = []

    def check(what: str, response: httpx.Response, expected: int) -> None:
        if response.status_code != expected:
            outcomes.append(f"{role} {what}: {response.status_code} != {expected}")

    async with caller:
        for form in FORMS:
            expect = Expect(role, form, user)
            base = f"/api/records/{APP}/{form}"
            records = seeded[form]
            # -- list + count: exactly the admitted rows, and the count says the same
            response = await call("GET", f"{base}?count=true&limit=100")
            if not expect.allows("read"):
                check(f"list {form}", response, 403)
            else:
                check(f"list {form}", response, 200)
                wanted = {r["id"] for r in records if expect.admits("read", r)}
                page = response.json()
                got = {item["id"] for item in page["items"]}
                if got != wanted or page["count"] != len(wanted):
                    outcomes.append(f"{role} list {form}: {sorted(got)} != {sorted(wanted)}")
                for item in page["items"]:
                    if set(item["data"]) & expect.hidden():
                        outcomes.append(f"{role} list {form}: hidden keys present")
            # -- a filter on a hidden field is a filter on an unknown field
            for key in sorted(expect.hidden()):
                response = await call(
                    "POST", f"{base}/query", json={"filter": {"!!": [{"var": key}]}}
                )
                check(f"filter {form}.{key}", response, 400)
            # -- read and history, row by row
            for record in records:
                url = f"{base}/{record['id']}"
                expected = expect.status("read", record, 200)
                check(f"read {form}/{record['id'][-4:]}", await call("GET", url), expected)
            # -- update
            for record in records:
                url = f"{base}/{record['id']}"
                change = next(
                    ((k, v) for k, v in PATCHES[form] if expect.writable(k)),
                    PATCHES[form][0],
                )
                response = await call("PATCH", url, json={"data": dict([change])})
                expected = expect.status("update", record, 200)
                check(f"update {form}/{record['id'][-4:]}", response, expected)
            # -- history, after the updates (old snapshots hold every canary)
            for record in records:
                url = f"{base}/{record['id']}/history"
                expected = expect.status("read", record, 200)
                response = await call("GET", url)
                check(f"history {form}/{record['id'][-4:]}", response, expected)
            # -- create, inside the caller's own rows
            response = await call("POST", base, json={"data": new_record(form, seeded, user)})
            check(f"create {form}", response, 201 if expect.allows("create") else 403)
            # -- setting a hidden field is refused
            for key in sorted(expect.hidden()):
                if not expect.allows("update"):
                    continue
                admitted = [r for r in records if expect.admits("update", r)]
                if admitted:
                    response = await call(
                        "PATCH", f"{base}/{admitted[0]['id']}", json={"data": {key: None}}
                    )
                    check(f"set hidden {form}.{key}", response, 422)
        # -- app-level endpoints: a role in the app reads its outline and forms; changing or
        # exporting the app, users and the audit log are for platform admins only
        for method, url, body, expected in [
            ("GET", f"/api/apps/{APP}", None, 200),
            ("GET", "/api/apps", None, 200),
            ("GET", f"/api/apps/{APP}/export", None, 403),
            ("GET", f"/api/apps/{APP}/versions", None, 403),
            ("POST", "/api/apps/import", DEFINITION, 403),
            ("POST", f"/api/apps/{APP}/rollback?to=1", None, 403),
            ("GET", "/api/users", None, 403),
            ("GET", "/api/audit", None, 403),
        ]:
            check(f"{method} {url}", await call(method, url, json=body), expected)
        for form in FORMS:
            expect = Expect(role, form, user)
            for url in (f"/api/apps/{APP}/forms/{form}", f"/api/apps/{APP}/forms/{form}/schema"):
                check(f"GET {url}", await call("GET", url), 200)
            link = await call("POST", f"/api/apps/{APP}/forms/{form}/links", json={})
            check(f"link {form}", link, 201 if expect.allows("create") else 403)
            outline = (await call("GET", f"/api/apps/{APP}")).json()
            access = next(f for f in outline["forms"] if f["key"] == form)["access"]
            if set(access["actions"]) != {a for a in ACTIONS if expect.allows(a)}:
                outcomes.append(f"{role} outline {form}: {access['actions']}")
            if set(access["hidden_fields"]) != expect.hidden():
                outcomes.append(f"{role} outline {form}: hidden {access['hidden_fields']}")

        # -- deletes, last (records of later forms refer to earlier ones)
        for form in FORMS:
            expect = Expect(role, form, user)
            base = f"/api/records/{APP}/{form}"
            for record in seeded[form]:
                expected = expect.status("delete", record, 204)
                response = await call("DELETE", f"{base}/{record['id']}")
                check(f"delete {form}/{record['id'][-4:]}", response, expected)

    assert outcomes == []
    assert leaks(role, call.bodies) == []
    # the matrix exercised something: at least one allowed and, for all but admin, one refusal
    statuses = {what.rsplit(" ", 1)[1] for what, _ in call.bodies}
    assert "200" in statuses
    if role != "admin":
        assert "403" in statuses or "404" in statuses


async def test_leak_check_would_catch_a_leak(client: httpx.AsyncClient) -> None:
    """The leak search itself works: an admin's responses do contain the canaries."""
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201
    seeded = await seed(client)
    visit = seeded["visit"][0]["id"]
    body = (await client.get(f"/api/records/{APP}/visit/{visit}")).text
    assert leaks("front_desk", [("admin read", body)]) != []
