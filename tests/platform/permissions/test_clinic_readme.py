"""The clinic CRM's README promises, checked against the app through the API.

builtin_apps/clinic_crm/README.md tells people who may do what ("Who may do what") and which
fields each role cannot see or change ("Fields hidden or read-only per role"). This test reads
both tables from the README itself — so the document and the app cannot drift apart again —
and, for every role, signs in as a user holding only that role and checks every cell:

- each action on each form is allowed (within the stated scope: a record outside it is a 404)
  or refused (403), for read, update (an empty PATCH), create and delete;
- a record with every field filled in shows the role exactly the fields the README does not
  hide;
- every read-only field refuses being cleared (422 ``read_only``), every hidden field refuses
  being written (422 ``forbidden_field``), and every other input field is writable (never
  refused for being read-only or hidden).

On SQLite and PostgreSQL. test_clinic_matrix.py checks the same app against its own
definition; this one checks it against what its README says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from formloom import builtin_apps
from tests.platform.permissions.helpers import as_user, make_user
from tests.platform.permissions.test_clinic_matrix import (
    APP,
    DEFINITION,
    HOME,
    new_record,
    seed,
)

README = (builtin_apps.path(APP).parent / "README.md").read_text(encoding="utf-8")
ACTIONS = ("create", "read", "update", "delete", "export")
FORMS: dict[str, dict[str, Any]] = {form["key"]: form for form in DEFINITION["forms"]}


def table(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table under ``heading``."""
    section = README.split(heading, 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    start = section.index(lines[0])
    rows = []
    for line in section[start:].splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert re.fullmatch(r"[-|: ]+", "|".join(rows[1])), "second row must be the separator"
    return [rows[0], *rows[2:]]


def names(cell: str) -> set[str]:
    """Field names in backticks, outside the explanations in parentheses."""
    return set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cell)))


@dataclass(frozen=True)
class Scope:
    """A record's ``field`` must equal the user's ``attribute``; ``or_none``: or be empty
    (a record without a branch is every branch's)."""

    field: str
    attribute: str
    or_none: bool = False


@dataclass(frozen=True)
class Grant:
    actions: frozenset[str]
    scope: tuple[Scope, ...] = ()  # every one must hold


def grants() -> dict[tuple[str, str], Grant]:
    """(form, role) -> what "Who may do what" says."""
    header, *rows = table("## Who may do what")
    roles = [cell.split()[0] for cell in header[1:]]
    found = {}
    for row in rows:
        form = row[0].strip("*")
        for role, cell in zip(roles, row[1:], strict=True):
            if cell == "all":
                found[(form, role)] = Grant(frozenset(ACTIONS))
                continue
            listed, _, scope = cell.partition(" — ")
            actions = {word.strip() for word in re.sub(r"\(.*\)", "", listed).split(",")}
            actions.discard("—")
            assert actions <= set(ACTIONS), (form, role, cell)
            where = tuple(
                Scope(key, attribute, bool(none))
                for key, attribute, none in re.findall(
                    r"\(`([a-z_]+)` = `\$user\.([a-z_]+)`(, or none)?\)", scope
                )
            )
            assert bool(scope) == bool(where), f"unreadable scope {scope!r}"
            found[(form, role)] = Grant(frozenset(actions), where)
    return found


@dataclass
class Fields:
    hidden: set[str] = field(default_factory=set)
    read_only: set[str] = field(default_factory=set)


def field_rules() -> dict[tuple[str, str], Fields]:
    """(form, role) -> what "Fields hidden or read-only per role" says."""
    _, *rows = table("### Fields hidden or read-only per role")
    found = {}
    for form, roles, hidden, read_only in rows:
        for role in (name.strip() for name in roles.split(",")):
            assert (form, role) not in found, f"{form}/{role} listed twice"
            found[(form, role)] = Fields(names(hidden), names(read_only))
    return found


GRANTS = grants()
FIELD_RULES = field_rules()
ROLES = sorted({role for _, role in GRANTS})


def test_the_readme_tables_cover_the_app() -> None:
    """Every form and role of the app is in the tables; every named field exists."""
    assert {form for form, _ in GRANTS} == set(FORMS)
    assert set(ROLES) == {role["key"] for role in DEFINITION["roles"]}
    for (form, role), rules in FIELD_RULES.items():
        keys = {f["key"] for f in FORMS[form]["fields"]}
        assert rules.hidden | rules.read_only <= keys, (form, role)
        assert role in ROLES
    assert GRANTS[("visit", "nurse")] == Grant(
        frozenset({"read", "update"}),
        (Scope("department", "department"), Scope("branch", "branch", or_none=True)),
    )
    assert "pain_score" in FIELD_RULES[("visit", "front_desk")].hidden


def filler(form: str, key: str, seeded: dict[str, list[dict[str, Any]]]) -> Any:
    """A valid value for a field the seeded record leaves empty."""
    spec = next(f for f in FORMS[form]["fields"] if f["key"] == key)
    special = {
        ("patient", "channel"): "referral",
        ("patient", "referred_by"): seeded["patient"][1]["id"],
        ("visit", "follow_up_needed"): True,
        ("visit", "follow_up_plan"): "standard",
    }
    if (form, key) in special:
        return special[(form, key)]
    kind = spec["type"]
    if kind in ("text", "textarea"):
        return f"README check {key}"
    if kind in ("number", "integer"):
        return spec.get("min", 1) or 1
    return {
        "boolean": True,
        "date": "2026-11-20",
        "datetime": "2026-11-20T09:00:00Z",
        "email": f"{key}.readme@example.org",
        "select": spec["options"][0]["value"] if "options" in spec else None,
        "multiselect": [spec["options"][0]["value"]] if "options" in spec else None,
        "relation": seeded[spec.get("target", form)][0]["id"] if "target" in spec else None,
    }.get(kind)


async def fill_home_records(
    admin: httpx.AsyncClient, seeded: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Give the home-department record of each form a value in every field it can hold
    (files excepted), so that a field hidden from a role would show if it leaked."""
    full = {}
    for form, records in seeded.items():
        url = f"/api/records/{APP}/{form}/{records[0]['id']}"
        data = (await admin.get(url)).json()["data"]
        missing = {}
        for spec in FORMS[form]["fields"]:
            if spec["type"] in ("section", "computed", "file", "image", "table"):
                continue
            if spec.get("read_only"):  # kept by the clinic's rules, refused to everyone
                continue
            if spec["key"] not in data:
                value = filler(form, spec["key"], seeded)
                if value is not None:
                    missing[spec["key"]] = value
        if missing:
            response = await admin.patch(url, json={"data": missing})
            assert response.status_code == 200, response.text
        full[form] = (await admin.get(url)).json()
    return full


def inside(grant: Grant, record: dict[str, Any], user: dict[str, Any]) -> bool:
    return all(
        (scope.or_none and not record["data"].get(scope.field))
        or record["data"].get(scope.field) == user[scope.attribute]
        for scope in grant.scope
    )


def expected(
    grant: Grant, action: str, record: dict[str, Any], user: dict[str, Any], ok: int
) -> int:
    if action not in grant.actions:
        return 403
    return ok if inside(grant, record, user) else 404


def codes(response: httpx.Response, key: str) -> set[str]:
    if response.status_code != 422:
        return set()
    return {e["code"] for e in response.json().get("errors", []) if e.get("field") == key}


@pytest.mark.parametrize("role", ROLES)
async def test_the_readme_is_what_the_app_does(client: httpx.AsyncClient, role: str) -> None:
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    seeded = await seed(client)
    full = await fill_home_records(client, seeded)
    user = {
        "department": HOME,
        "staff_id": seeded["staff"][0]["id"],
        "branch": seeded["branch"][0]["id"],
    }
    token = await make_user(client, f"readme_{role}", roles={APP: [role]}, attributes=user)
    wrong: list[str] = []
    statuses: set[int] = set()

    def check(what: str, got: int, want: int) -> None:
        statuses.add(got)
        if got != want:
            wrong.append(f"{role} {what}: {got}, README says {want}")

    async with as_user(client, token) as caller:
        for form in FORMS:
            grant = GRANTS[(form, role)]
            rules = FIELD_RULES.get((form, role), Fields())
            base = f"/api/records/{APP}/{form}"
            home = full[form]
            # -- actions, within the stated scope
            for record in seeded[form]:
                url = f"{base}/{record['id']}"
                # the scope is judged on the record as it is now (filled in, for home)
                current = home if record["id"] == home["id"] else record
                read = await caller.get(url)
                check(f"read {form} ({record['data'].get('department')})", read.status_code,
                      expected(grant, "read", current, user, 200))  # fmt: skip
                update = await caller.patch(url, json={"data": {}})
                check(f"update {form}", update.status_code,
                      expected(grant, "update", current, user, 200))  # fmt: skip
            made = await caller.post(base, json={"data": new_record(form, seeded, user)})
            check(f"create {form}", made.status_code, 201 if "create" in grant.actions else 403)
            # -- hidden fields: the role sees every field but those
            if "read" in grant.actions and inside(grant, home, user):
                seen = set((await caller.get(f"{base}/{home['id']}")).json()["data"])
                promised = set(home["data"]) - rules.hidden
                if seen != promised:
                    wrong.append(f"{role} {form}: sees {sorted(seen)}, README {sorted(promised)}")
            # -- read-only and hidden fields refuse writes; every other input field takes one
            if "update" in grant.actions and inside(grant, home, user):
                url = f"{base}/{home['id']}"
                for key in sorted(rules.read_only - rules.hidden):
                    if key in home["data"]:
                        got = codes(await caller.patch(url, json={"data": {key: None}}), key)
                        if "read_only" not in got:
                            wrong.append(f"{role} may clear read-only {form}.{key}")
                for key in sorted(rules.hidden):
                    got = codes(await caller.patch(url, json={"data": {key: None}}), key)
                    if "forbidden_field" not in got:
                        wrong.append(f"{role} may write hidden {form}.{key}")
                for spec in FORMS[form]["fields"]:
                    key = spec["key"]
                    if (
                        spec["type"] in ("section", "computed")
                        or spec.get("read_only")  # read-only for everyone (kept by rules)
                        or key in rules.read_only | rules.hidden
                    ):
                        continue
                    got = codes(await caller.patch(url, json={"data": {key: None}}), key)
                    if got & {"read_only", "forbidden_field"}:
                        wrong.append(f"{role} may not write {form}.{key} ({sorted(got)})")
        # -- deletes, last (later forms' records point at earlier ones)
        for form in FORMS:
            grant = GRANTS[(form, role)]
            for record in seeded[form]:
                current = full[form] if record["id"] == full[form]["id"] else record
                response = await caller.delete(
                    f"{APP and '/api/records/' + APP}/{form}/{record['id']}"
                )
                check(f"delete {form}", response.status_code,
                      expected(grant, "delete", current, user, 204))  # fmt: skip
    assert wrong == []
    # the README was exercised for real: the role could do something, and (all but the app's
    # admin) was refused something
    assert 200 in statuses
    assert role == "admin" or statuses & {403, 404}
