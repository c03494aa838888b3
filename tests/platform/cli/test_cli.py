"""The ``formloom`` command, run in-process against each database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formloom import builtin_apps
from formloom.platform.cli import main
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
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "/forms/0/fields/0/type" in err and "/forms/0/fields/1/max_lenght" in err


def test_check_reports_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": ')
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(path)])
    assert "not valid JSON" in str(exit_info.value)


def test_import_list_export_round_trip(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = builtin_apps.path("clinic_crm")
    assert main(["app", "import", "--dry-run", str(source)]) == 0
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
    assert main(["app", "export", "nope"]) == 1


def test_import_of_an_invalid_file_changes_nothing(
    use_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(f.app("bad", f.form("a", f.field("r", "relation", target="x")))))
    assert main(["app", "import", str(path)]) == 1
    assert "/forms/0/fields/0/target" in capsys.readouterr().err
    assert main(["app", "list"]) == 0
    assert "no apps installed" in capsys.readouterr().out


def test_db_upgrade_is_idempotent(use_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    assert "newest revision" in capsys.readouterr().out
