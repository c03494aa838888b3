"""The broken-definition corpus: every kind of bad input an import can meet, on both databases.

A valid app is installed and exported first. Each broken definition is then sent through
``POST /api/apps/import`` and ``POST /api/apps/import?dry_run=true``, and through the CLI
(``formloom app import`` with and without ``--dry-run``, and ``formloom check``). The API must
answer a 4xx problem-details body with a message (and pointers where the problem is inside
the document), never a 500; the CLI must exit with 2 and say why on stderr; and afterwards the
installed app must export byte for byte as before.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from formloom.platform.cli import MAX_FILE_BYTES, main
from formloom.platform.settings import get_settings
from tests import factories as f

Document = dict[str, Any]


def valid_app() -> Document:
    """Two related forms with a table, a computed field and labels in two locales."""
    document = f.crm_app()
    document["locales"] = ["en", "zh-CN"]
    document["label"] = {"en": "CRM", "zh-CN": "客户管理"}
    document["roles"] = [{"key": "sales", "label": "Sales"}]
    return document


def edit(change: Callable[[Document], Any]) -> Callable[[Document, bytes], bytes]:
    """A case made by changing a copy of the valid document."""

    def make(document: Document, _exported: bytes) -> bytes:
        broken = copy.deepcopy(document)
        change(broken)
        return json.dumps(broken, ensure_ascii=False).encode()

    return make


def text(replace: str, by: str) -> Callable[[Document, bytes], bytes]:
    """A case made by replacing text in the exported JSON (for what json.dumps cannot write)."""

    def make(_document: Document, exported: bytes) -> bytes:
        source = exported.decode()
        assert replace in source
        return source.replace(replace, by, 1).encode()

    return make


def raw(body: bytes) -> Callable[[Document, bytes], bytes]:
    return lambda _document, _exported: body


def nested(depth: int) -> Any:
    rule: Any = {"var": "name"}
    for _ in range(depth):
        rule = {"!": rule}
    return rule


def deep_json(depth: int) -> bytes:
    # json.dumps itself recurses; build the text directly.
    head = (
        b'{"format": "formloom.app/v1", "key": "crm", "version": "1.0.0", "label": "x", "rules": '
    )
    return head + b"[" * depth + b"]" * depth + b"}"


def set_at(path: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
        node: Any = document
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def delete(path: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = document
        for part in parents:
            node = node[int(part) if part.isdigit() else part]
        del node[last]

    return change


def many_duplicates(document: Document) -> None:
    document["forms"][0]["fields"] = [f.field("same") for _ in range(1000)]


def computed_ring(document: Document) -> None:
    """2,000 computed fields, each reading the next, the last reading the first."""
    count = 2000
    document["forms"][0]["fields"] = [
        {"key": f"c{i}", "type": "computed", "formula": {"var": f"c{(i + 1) % count}"}}
        for i in range(count)
    ]


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Document, bytes], bytes]
    pointer: str | None = None  #: a pointer the errors must include (or a prefix of one)
    api_only: bool = False  #: a property of the HTTP request, not of a file
    #: Not JSON (RFC 8259), though Python's parser takes it: the CLI refuses it while parsing.
    not_json: bool = False
    content_type: str = "application/json"


CORPUS = [
    Case("truncated", lambda _d, exported: exported[: len(exported) // 2]),
    Case("truncated-in-a-string", lambda _d, exported: exported[:30]),
    Case("empty", raw(b"")),
    Case("not-an-object", raw(b"[1, 2, 3]"), ""),
    Case("null", raw(b"null"), ""),
    Case("a-string", raw(b'"formloom.app/v1"'), ""),
    Case("invalid-utf8", raw(b'{"format": "formloom.app/v1", "key": "\xff\xfe"}')),
    Case("huge-number", raw(b'{"format": "formloom.app/v1", "n": ' + b"9" * 5000 + b"}")),
    Case("nan", text('"version": "1.0.0"', '"version": NaN'), "/version", not_json=True),
    Case("infinity", text('"min": 0', '"min": -Infinity'), "/forms/0/fields/2/min", not_json=True),
    Case("wrong-format", edit(set_at("/format", "formloom.app/v2")), "/format"),
    Case("format-missing", edit(delete("/format")), "/format"),
    Case("unknown-top-level-property", edit(set_at("/colour", "red")), "/colour"),
    Case(
        "unknown-field-type",
        edit(set_at("/forms/0/fields/1/type", "telephone")),
        "/forms/0/fields/1/type",
    ),
    Case("field-type-missing", edit(delete("/forms/0/fields/1/type")), "/forms/0/fields/1/type"),
    Case("fields-not-a-list", edit(set_at("/forms/0/fields", {"name": {}})), "/forms/0/fields"),
    Case("form-not-an-object", edit(set_at("/forms/1", "deal")), "/forms/1"),
    Case("field-key-a-number", edit(set_at("/forms/0/fields/0/key", 5)), "/forms/0/fields/0/key"),
    Case("app-key-a-number", edit(set_at("/key", 5)), "/key"),
    Case("label-a-number", edit(set_at("/forms/0/label", 5)), "/forms/0/label"),
    Case(
        "option-label-a-number",
        edit(set_at("/forms/0/fields/6/options/0/label", 1)),
        "/forms/0/fields/6/options/0/label",
    ),
    Case("locale-label-a-number", edit(set_at("/label/zh-CN", 7)), "/label/zh-CN"),
    Case(
        "required-a-string",
        edit(set_at("/forms/0/fields/0/required", "yes")),
        "/forms/0/fields/0/required",
    ),
    Case("deep-nesting-1000", raw(deep_json(1000))),
    Case(
        "deep-expression-100",
        edit(set_at("/forms/0/fields/3/visible_if", nested(100))),
        "/forms/0/fields/3/visible_if",
    ),
    Case(
        "unknown-operator",
        edit(set_at("/forms/0/fields/3/visible_if", {"and": [True, {"frobnicate": [1]}]})),
        "/forms/0/fields/3/visible_if/and/1",
    ),
    Case(
        "unknown-variable",
        edit(set_at("/forms/0/fields/3/visible_if", {"var": "nosuchfield"})),
        "/forms/0/fields/3/visible_if",
    ),
    Case("duplicate-form-key", edit(set_at("/forms/1/key", "contact")), "/forms/1/key"),
    Case(
        "duplicate-field-key",
        edit(set_at("/forms/0/fields/1/key", "name")),
        "/forms/0/fields/1/key",
    ),
    Case(
        "duplicate-option",
        edit(set_at("/forms/0/fields/6/options/1/value", "a")),
        "/forms/0/fields/6/options/1/value",
    ),
    Case("duplicate-role", edit(set_at("/roles", [{"key": "a"}, {"key": "a"}])), "/roles/1/key"),
    Case("many-duplicates", edit(many_duplicates), "/forms/0/fields/999/key"),
    Case("computed-ring-2000", edit(computed_ring), "/forms/0/fields/1999/formula"),
    Case(
        "relation-to-missing-form",
        edit(set_at("/forms/1/fields/1/target", "person")),
        "/forms/1/fields/1/target",
    ),
    Case(
        "relation-to-missing-form-in-a-table",
        edit(set_at("/forms/1/fields/3/fields/0/target", "person")),
        "/forms/1/fields/3/fields/0/target",
    ),
    Case(
        "computed-cycle",
        edit(set_at("/forms/0/fields/9/formula", {"var": "age_next_year"})),
        "/forms/0/fields/9/formula",
    ),
    Case("missing-locale", edit(set_at("/label", {"en": "CRM"})), "/label"),
    Case(
        "migration-of-missing-form",
        edit(set_at("/migrations", [{"form": "lead"}])),
        "/migrations/0/form",
    ),
    Case("nul-in-a-value", edit(set_at("/forms/0/label", "Con\x00tact")), "/forms/0/label"),
    Case("nul-in-a-key", edit(set_at("/forms/0/la\x00bel", "x")), "/forms/0"),
    Case("lone-surrogate", text('"Contact"', '"Con\\ud800tact"'), "/forms/0/label"),
    Case("very-long-key", edit(set_at("/key", "k" * 100_000)), "/key"),
    Case("huge-body-50mb", raw(b'{"label": "' + b"x" * 50_000_000 + b'"}'), api_only=True),
    Case(
        "not-json-content-type",
        lambda _d, exported: exported,
        api_only=True,
        content_type="text/plain",
    ),
]


def _has_pointer(errors: list[dict[str, Any]], pointer: str) -> bool:
    return any(e["path"] == pointer or e["path"].startswith(pointer + "/") for e in errors)


# -- the API -----------------------------------------------------------------------------------


async def test_broken_definitions_over_the_api(client: httpx.AsyncClient) -> None:
    document = valid_app()
    installed = await client.post("/api/apps/import", json=document)
    assert installed.status_code == 201, installed.text
    before = (await client.get("/api/apps/crm/export")).content
    failures = []
    for case in CORPUS:
        body = case.make(document, before)
        for query in ("", "?dry_run=true"):
            response = await client.post(
                "/api/apps/import" + query,
                content=body,
                headers={"content-type": case.content_type},
            )
            where = f"{case.name}{query}"
            if not 400 <= response.status_code < 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
                continue
            assert response.headers["content-type"] == "application/problem+json", where
            problem = response.json()
            assert problem["status"] == response.status_code, where
            assert isinstance(problem.get("detail"), str) and problem["detail"], where
            for error in problem.get("errors", []):
                assert error["message"], where
            if case.pointer is not None and not _has_pointer(
                problem.get("errors", []), case.pointer
            ):
                failures.append(f"{where}: no error at {case.pointer!r}: {problem}"[:400])
            after = (await client.get("/api/apps/crm/export")).content
            assert after == before, f"{where} changed the installed app"
    assert failures == []
    listing = (await client.get("/api/apps")).json()
    assert [(app["key"], app["revision"]) for app in listing] == [("crm", 1)]


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def use_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_broken_definitions_through_the_cli(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = valid_app()
    source = tmp_path / "crm.json"
    source.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    assert main(["app", "import", str(source)]) == 0
    exported = tmp_path / "export.json"
    assert main(["app", "export", "crm", "-o", str(exported)]) == 0
    before = exported.read_bytes()
    capsys.readouterr()

    oversized = Case("larger-than-10mb", raw(b'{"label": "' + b"x" * MAX_FILE_BYTES + b'"}'))
    cases = [case for case in CORPUS if not case.api_only] + [oversized]
    for case in cases:
        path = tmp_path / f"{case.name}.json"
        path.write_bytes(case.make(document, before))
        for argv in (["check"], ["app", "import", "--dry-run"], ["app", "import"]):
            where = f"{case.name}: {' '.join(argv)}"
            assert main([*argv, str(path)]) == 2, where
            captured = capsys.readouterr()
            assert captured.err.strip(), where
            assert captured.out == "", where
            if case.not_json:
                assert "is not valid JSON" in captured.err, where
            elif case.pointer:
                assert case.pointer in captured.err, where
        assert main(["app", "export", "crm", "-o", str(exported)]) == 0
        assert exported.read_bytes() == before, f"{case.name} changed the installed app"
