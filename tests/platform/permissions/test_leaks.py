"""The leak suite: a field hidden from a role changes no answer, however its name is written.

Generated from the clinic CRM's own definition. For every role and every field hidden from
it, the name is written many ways (literal; ``cat``, ``if``, ``substr`` computing it; a
``var`` default; a one-element path list; ``val`` / ``exists``; ``missing`` /
``missing_some`` with a computed name; wrapped in ``and`` / ``or`` / ``!``) and put into
every place a caller's JsonLogic or field path reaches SQL: record lists (GET, POST query,
sort, field lists, counts), CSV exports, the list page and its drill-downs (also through a
related form's drill-down), ad-hoc reports (filter, measure filter, dimension, measure
field, a dimension hopping through a relation into the hidden field) and rule tests.

Each probe is sent twice: once guessing the record's real hidden value, once guessing a
wrong one — exactly the oracle an attacker uses ("n: 1", "n: 0"). The two answers must be
identical (status and body, with the guess itself blanked) and must be a refusal, and the
probe must leave an audit row. The canary record holds the real value, so any filter that
was really evaluated would answer differently.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.platform.permissions.helpers import make_user
from tests.platform.permissions.test_clinic_matrix import (
    APP,
    CANARIES,
    DEFINITION,
    FORMS,
    HOME,
    ROLES,
    Expect,
    seed,
)

Rule = Any


def obfuscations(key: str) -> list[tuple[str, Callable[[Rule], Rule]]]:
    """Ways to read ``key``: (name, build) where build(op_and_value) gives a condition.

    ``build`` receives a function making a condition from a value expression."""
    cut = max(1, len(key) // 2)
    computed = {"cat": [key[:cut], key[cut:]]}
    values: list[tuple[str, Rule]] = [
        ("literal", {"var": key}),
        ("default", {"var": [key, "zz"]}),
        ("cat", {"var": computed}),
        ("cat-list", {"var": [computed]}),
        ("if", {"var": {"if": [True, key, "name"]}}),
        ("substr", {"var": {"substr": [key + "_zz", 0, len(key)]}}),
        ("nested-cat", {"var": {"cat": [{"cat": [key[:1]]}, key[1:]]}}),
        ("val", {"val": key}),
    ]
    return [(name, lambda compare, value=value: compare(value)) for name, value in values]


def presence_probes(key: str) -> list[tuple[str, Rule]]:
    """Conditions true exactly when the hidden field holds a value (no guess needed)."""
    cut = max(1, len(key) // 2)
    computed = {"cat": [key[:cut], key[cut:]]}
    return [
        ("missing", {"!": {"missing": computed}}),
        ("missing-list", {"!": {"missing": [computed]}}),
        ("missing_some", {"!": {"missing_some": [1, [computed]]}}),
        ("exists", {"exists": key}),
        ("or-wrapped", {"or": [{"==": [1, 0]}, {"!!": [{"var": computed}]}]}),
    ]


def guesses(value: Any) -> tuple[Callable[[Rule], Rule], Callable[[Rule], Rule], str, str]:
    """(condition with the real value, condition with a wrong one, the two guess texts)."""
    if isinstance(value, bool | int | float):
        real = int(value) - 1  # the field holds more than `real`, not more than a million
        return (
            lambda v: {">": [v, real]},
            lambda v: {">": [v, 10**6]},
            str(real),
            str(10**6),
        )
    # a table: guess its first row's item
    text = value[0]["item"] if isinstance(value, list) else str(value)
    wrong = "Q" * len(text)
    return (
        lambda v: {"==": [v, text]},
        lambda v: {"==": [v, wrong]},
        text,
        wrong,
    )


def related_forms(target: str) -> list[tuple[str, str]]:
    """(form, relation field) of every relation into ``target``."""
    found = []
    for form in DEFINITION["forms"]:
        for field in form["fields"]:
            if field.get("type") == "relation" and field.get("target") == target:
                found.append((form["key"], field["key"]))
    return found


class Probe:
    """Sends one probe with both guesses; collects what differed or was not refused."""

    def __init__(self, client: httpx.AsyncClient, role: str) -> None:
        self.client = client
        self.role = role
        self.failures: list[str] = []
        self.sent = 0

    async def both(
        self,
        what: str,
        request: Request,
        real: Rule,
        wrong: Rule,
        texts: tuple[str, str],
    ) -> None:
        answers = []
        for rule, text in ((real, texts[0]), (wrong, texts[1])):
            method, url, kwargs = request(rule)
            response = await self.client.request(method, url, **kwargs)
            self.sent += 1
            body = response.text
            for form in (text, quote(text), quote_plus(text), html.escape(text)):
                body = body.replace(form, "<guess>")  # the guess echoed back, however encoded
            answers.append((response.status_code, body))
        (status, body), (other_status, other_body) = answers
        if (status, body) != (other_status, other_body):
            self.failures.append(f"{self.role} {what}: answers differ ({status} / {other_status})")
        elif status < 400 and not (status == 200 and 'data-testid="list-error"' in body):
            # (the list page says a refused filter on the page itself)
            self.failures.append(f"{self.role} {what}: not refused ({status})")

    async def one(
        self,
        what: str,
        method: str,
        url: str,
        refused: tuple[int, ...] = (400, 403, 422),
        **kw: Any,
    ) -> None:
        response = await self.client.request(method, url, **kw)
        self.sent += 1
        if response.status_code not in refused:
            self.failures.append(
                f"{self.role} {what}: {response.status_code} {response.text[:200]}"
            )


Request = Callable[[Rule], tuple[str, str, dict[str, Any]]]


def doors(form: str) -> tuple[list[Request], list[Request]]:
    """Requests putting a condition where a caller's JsonLogic reaches SQL: the compilers'
    main doors (every obfuscation goes through them), and the others (in rotation)."""
    records = f"/api/records/{APP}/{form}"

    def listed(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        return "GET", f"{records}?count=true&filter={encoded(rule)}", {}

    def queried(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        return "POST", f"{records}/query", {"json": {"filter": rule, "count": True}}

    def pivot(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        body = {"form": form, "filter": rule, "measures": [{"key": "n", "op": "count"}]}
        return "POST", f"/api/reports/{APP}", {"json": body}

    def measured(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        body = {"form": form, "measures": [{"key": "n", "op": "count", "filter": rule}]}
        return "POST", f"/api/reports/{APP}", {"json": body}

    def exported(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        return "GET", f"/api/exports/{APP}/{form}?filter={encoded(rule)}", {}

    def drilled(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        drill = encoded({"form": form, "filter": rule})
        return "GET", f"/api/exports/{APP}/{form}?drill={drill}", {}

    def page(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        return "GET", f"/apps/{APP}/records/{form}?filter={encoded(rule)}", {}

    return [listed, queried, pivot, measured], [exported, drilled, page]


def related_drill(source: str, via: str, form: str) -> Request:
    """A drill-down into ``source`` records whose relation ``via`` meets a condition."""

    def related(rule: Rule) -> tuple[str, str, dict[str, Any]]:
        drill = {"form": source, "related": [{"via": via, "form": form, "filter": rule}]}
        return "GET", f"/api/exports/{APP}/{source}?drill={encoded(drill)}", {}

    return related


def encoded(value: Any) -> str:
    return quote(json.dumps(value), safe="")


@pytest.mark.parametrize("role", ROLES)
async def test_hidden_fields_change_no_answer(client: httpx.AsyncClient, role: str) -> None:
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    seeded = await seed(client)
    user = {"department": HOME, "staff_id": seeded["staff"][0]["id"]}
    username = f"leak_{role}"
    token = await make_user(client, username, roles={APP: [role]}, attributes=user)
    caller = httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {token}"},
    )
    probe = Probe(caller, role)
    probed_forms: set[str] = set()
    async with caller:
        for form in FORMS:
            expect = Expect(role, form, user)
            if not expect.allows("read"):
                continue
            for key in sorted(expect.hidden()):
                if (form, key) not in CANARIES:
                    continue
                probed_forms.add(form)
                real, wrong, real_text, wrong_text = guesses(CANARIES[(form, key)])
                texts = (real_text, wrong_text)
                records = f"/api/records/{APP}/{form}"
                for number, (name, build) in enumerate(obfuscations(key)):
                    what = f"{form}.{key} [{name}]"

                    # every obfuscation on the compilers' main doors; the rest in rotation
                    main, others = doors(form)
                    for door in [*main, others[number % len(others)]]:
                        await probe.both(
                            f"{what} via {door.__name__}", door, build(real), build(wrong), texts
                        )
                    # through a related form's drill-down (its related condition)
                    for source, via in related_forms(form)[:1]:
                        if Expect(role, source, user).allows("read"):
                            await probe.both(
                                f"{what} via {source}.{via} drill-down",
                                related_drill(source, via, form),
                                build(real),
                                build(wrong),
                                texts,
                            )
                # presence probes need no guess: they must simply be refused everywhere
                for name, rule in presence_probes(key):
                    what = f"{form}.{key} [{name}]"
                    url = f"{records}?count=true&filter={encoded(rule)}"
                    await probe.one(f"{what} list", "GET", url)
                    await probe.one(
                        f"{what} report",
                        "POST",
                        f"/api/reports/{APP}",
                        json={
                            "form": form,
                            "filter": rule,
                            "measures": [{"key": "n", "op": "count"}],
                        },
                    )
                # field paths: sort, fields, dimensions, measures, hops
                for sort in (key, f"-{key}", f"name,{key}"):
                    await probe.one(f"{form}.{key} sort={sort}", "GET", f"{records}?sort={sort}")
                await probe.one(f"{form}.{key} fields", "GET", f"{records}?fields={key}")
                await probe.one(
                    f"{form}.{key} export fields", "GET", f"/api/exports/{APP}/{form}?fields={key}"
                )
                for body in (
                    {
                        "form": form,
                        "rows": [{"field": key}],
                        "measures": [{"key": "n", "op": "count"}],
                    },
                    {
                        "form": form,
                        "measures": [{"key": "n", "op": "count_distinct", "field": key}],
                    },
                ):
                    await probe.one(
                        f"{form}.{key} report {body}", "POST", f"/api/reports/{APP}", json=body
                    )
                for source, via in related_forms(form):
                    if not Expect(role, source, user).allows("read"):
                        continue
                    await probe.one(
                        f"{source}.{via}.{key} hop",
                        "POST",
                        f"/api/reports/{APP}",
                        json={
                            "form": source,
                            "rows": [{"field": f"{via}.{key}"}],
                            "measures": [{"key": "n", "op": "count"}],
                        },
                    )
        # rule tests run the app's expressions over a given record: platform admins and the
        # app's designers only (what a designer's test reads through relations follows
        # their grants: tests/platform/rules/test_related_rules.py)
        designs = role in DEFINITION.get("design", [])
        for rule in [] if designs else DEFINITION["rules"]:
            await probe.one(
                f"rule test {rule['key']}",
                "POST",
                f"/api/rules/{APP}/{rule['key']}/test",
                refused=(403,),
                json={"record": {}},
            )
    assert not probe.failures, "\n".join(probe.failures[:40])
    if probed_forms:
        # every probe is audited, with the fields it named
        entries: list[dict[str, Any]] = []
        cursor = ""
        while True:
            audit = await client.get(
                f"/api/audit?actor={username}&outcome=denied&limit=1000{cursor}"
            )
            assert audit.status_code == 200, audit.text
            entries += audit.json()["items"]
            if not audit.json().get("next_cursor"):
                break
            cursor = f"&cursor={audit.json()['next_cursor']}"
        reasons = {e["detail"].get("reason") for e in entries}
        assert {"hidden_field", "report_hidden_field"} <= reasons, reasons
        assert probed_forms <= {e["form"] for e in entries}
