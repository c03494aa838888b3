"""The ``formloom`` command, run in-process against each database.

Exit codes: 0 success, 1 the command failed, 2 bad input (see ``formloom.platform.cli``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from formloom import builtin_apps
from formloom.engines.apps import app_format_schema
from formloom.platform.cli import MAX_FILE_BYTES, main
from formloom.platform.settings import get_settings
from tests import factories as f


@pytest.fixture
def use_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_check_accepts_the_bundled_apps(capsys: pytest.CaptureFixture[str]) -> None:
    for name in builtin_apps.available():
        assert main(["check", str(builtin_apps.path(name))]) == 0
    assert "valid formloom.app/v1 app 'clinic_crm'" in capsys.readouterr().out


def test_check_lists_problems_by_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = f.app("bad", f.form("a", f.field("n", "nosuchtype"), f.field("m", max_lenght=3)))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "/forms/0/fields/0/type" in err and "/forms/0/fields/1/max_lenght" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": ', "is not valid JSON: Expecting value (line 1, column 12)"),
        (b"", "is not valid JSON"),
        (b'{"label": "\xff"}', "is not UTF-8 text (byte 11)"),
        (b'{"key": NaN}', "NaN is not a JSON value"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "is not valid JSON"),
    ],
    ids=["truncated", "empty", "not-utf8", "nan", "deep", "huge-number"],
)
def test_check_refuses_input_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("formloom: ") and message in err


def test_check_refuses_unreadable_and_oversized_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    big = tmp_path / "big.json"
    big.write_bytes(b'{"x": "' + b"a" * MAX_FILE_BYTES + b'"}')
    assert main(["check", str(big)]) == 2
    assert "larger than 10 MB" in capsys.readouterr().err


def test_check_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = builtin_apps.path("clinic_crm").read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["check", "-"]) == 0
    assert "valid formloom.app/v1 app 'clinic_crm'" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b" " * (MAX_FILE_BYTES + 1))))
    assert main(["check", "-"]) == 2
    assert "standard input is larger than 10 MB" in capsys.readouterr().err


def test_check_tolerates_a_byte_order_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + builtin_apps.path("clinic_crm").read_bytes())
    assert main(["check", str(path)]) == 0


def test_schema_app_prints_the_format_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "app"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == app_format_schema()
    assert printed.startswith('{\n  "$schema": "https://json-schema.org/draft/2020-12/schema"')
    out = tmp_path / "formloom-app.schema.json"
    assert main(["schema", "app", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == printed


def test_a_file_may_name_its_schema(tmp_path: Path) -> None:
    document = builtin_apps.load("clinic_crm")
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"$schema": "./formloom-app.schema.json", **document}))
    assert main(["check", str(path)]) == 0


def test_import_list_export_round_trip(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = builtin_apps.path("clinic_crm")
    assert main(["app", "import", "--dry-run", "--json", str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "create"
    assert main(["app", "import", str(source)]) == 0
    assert "app 'clinic_crm' created (revision 1" in capsys.readouterr().out
    assert main(["app", "import", str(source)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["app", "list"]) == 0
    assert "clinic_crm" in capsys.readouterr().out
    out = tmp_path / "export.json"
    assert main(["app", "export", "clinic_crm", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(source.read_text())
    assert main(["app", "export", "nope"]) == 1  # a failure, not bad input


def test_import_of_an_invalid_file_changes_nothing(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(f.app("bad", f.form("a", f.field("r", "relation", target="x")))))
    assert main(["app", "import", str(path)]) == 2
    assert "/forms/0/fields/0/target" in capsys.readouterr().err
    assert main(["app", "import", "--dry-run", str(path)]) == 2
    assert "/forms/0/fields/0/target" in capsys.readouterr().err
    assert main(["app", "list"]) == 0
    assert "no apps installed" in capsys.readouterr().out


def test_db_upgrade_is_idempotent(use_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    assert "newest revision" in capsys.readouterr().out


def _changed_clinic(tmp_path: Path) -> Path:
    document = builtin_apps.load("clinic_crm")
    patient = next(form for form in document["forms"] if form["key"] == "patient")
    for fld in patient["fields"]:
        if fld["key"] == "phone":
            fld["key"] = "mobile"
    # the patient's FHIR map names fields by key too
    fhir_map = patient.get("fhir", {}).get("map", {})
    for element, target in list(fhir_map.items()):
        if target == "phone":
            fhir_map[element] = "mobile"
    staff = next(form for form in document["forms"] if form["key"] == "staff")
    staff["fields"] = [fld for fld in staff["fields"] if fld["key"] != "phone"]
    for grant in document["permissions"]:  # grants name fields by key: follow the changes
        renamed = {"phone": "mobile"} if grant["form"] == "patient" else {"phone": None}
        for rule in ("hidden_fields", "read_only_fields"):
            keys = [renamed.get(key, key) for key in grant.get(rule, [])]
            grant[rule] = [key for key in keys if key]
    # so do rules: the patient rules text the patient's phone (the revisit reminder's
    # filter reads it; appointment reminders read it through the appointment's patient)
    rules = (
        json.dumps(document["rules"])
        .replace('"record.phone"', '"record.mobile"')
        .replace('"record.patient.phone"', '"record.patient.mobile"')
        .replace('{"var": "phone"}', '{"var": "mobile"}')
    )
    document["rules"] = json.loads(rules)
    document["migrations"] = [{"form": "patient", "rename": {"phone": "mobile"}}]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    return path


def test_app_diff_prints_the_plan_between_two_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = _changed_clinic(tmp_path)
    assert main(["app", "diff", str(builtin_apps.path("clinic_crm")), str(changed)]) == 0
    out = capsys.readouterr().out
    assert "phone -> mobile  renamed  needs migration" in out
    assert "staff    phone" in out and "destructive" in out
    assert main(["app", "diff", "--json", str(changed), str(changed)]) == 0
    assert json.loads(capsys.readouterr().out)["forms"] == []


def test_import_dry_run_table_and_allow_destructive(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app", "import", str(builtin_apps.path("clinic_crm"))]) == 0
    capsys.readouterr()
    changed = str(_changed_clinic(tmp_path))
    assert main(["app", "import", "--dry-run", changed]) == 0
    table = capsys.readouterr().out
    assert "RECORDS" in table and "renamed phone -> mobile [by rename]" in table
    assert main(["app", "import", "--dry-run", "--json", changed]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "update"
    assert main(["app", "import", changed]) == 0  # no records yet: nothing is destroyed
    assert "revision 2" in capsys.readouterr().out


def test_imports_from_the_command_line_are_audited(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app", "import", str(builtin_apps.path("clinic_crm"))]) == 0
    broken = tmp_path / "broken.json"
    document = json.loads(builtin_apps.path("clinic_crm").read_text(encoding="utf-8"))
    document["permissions"][0]["roles"] = ["janitor"]
    broken.write_text(json.dumps(document))
    assert main(["app", "import", str(broken)]) == 2
    capsys.readouterr()
    assert main(["audit", "export", "--action", "app."]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((row["action"], row["outcome"]) for row in rows) == [
        ("app.import", "failed"),
        ("app.import", "ok"),
        ("app.permissions_changed", "ok"),
    ]
    assert all(row["actor"].startswith("cli:") for row in rows)
