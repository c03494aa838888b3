"""``formloom user ...`` and ``formloom audit export``, in-process against each database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from formloom.platform.cli import main
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings, get_settings
from tests import factories as f
from tests.conftest import FIXED_NOW, running_service
from tests.platform.auth.helpers import audit_rows

PASSWORD = "correct horse battery"


@pytest.fixture
def use_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", database_url)
    monkeypatch.setenv("FORMLOOM_PASSWORD_HASH", "fast-test-only")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def api(url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request to a service on the test database (the CLI tests are not async: the CLI
    runs its own event loop)."""

    async def call() -> httpx.Response:
        # no worker: it would tick on a real loop for the one request (tests run it themselves)
        settings = Settings(database_url=url, password_hash="fast-test-only", worker_in_serve=False)
        async with running_service(settings, FixedClock(FIXED_NOW)) as c:
            return await c.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(call())


def create(monkeypatch: pytest.MonkeyPatch, *args: str, password: str = PASSWORD) -> int:
    stdin(monkeypatch, password + "\n")
    return main(["user", "create", *args, "--password-stdin"])


def test_create_with_a_generated_password_printed_once(
    use_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "create", "Ops", "--admin", "--display-name", "Ops team"]) == 0
    out = capsys.readouterr().out
    assert "admin 'ops' created" in out
    password = out.split("password (shown once): ")[1].split()[0]
    body = {"username": "ops", "password": password}
    assert api(use_database, "POST", "/api/auth/token", json=body).status_code == 200
    [row] = asyncio.run(audit_rows(use_database, "user.created"))
    assert row["actor"].startswith("cli:") and row["via"] == "system"
    assert row["detail"]["is_admin"] is True


def test_create_with_attributes_and_a_password_from_stdin(
    use_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = create(monkeypatch, "nurse1", "--attr", "department=cardiology", "--attr", "level:=3")
    assert code == 0
    assert "password" not in capsys.readouterr().out
    create(monkeypatch, "ops", "--admin")
    token = api(
        use_database, "POST", "/api/auth/token", json={"username": "ops", "password": PASSWORD}
    ).json()["access_token"]
    user = api(
        use_database, "GET", "/api/users/nurse1", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert user["attributes"] == {"department": "cardiology", "level": 3}
    assert user["is_admin"] is False


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["bad name"], PASSWORD, "username is not valid"),
        (["bob\r\nx"], PASSWORD, "username is not valid"),
        (["bob"], "short", "at least 10 characters"),
        (["bob", "--attr", "novalue"], PASSWORD, "expected key=value"),
        (["bob", "--attr", "n:=nope"], PASSWORD, "is not JSON"),
        (["bob"], "", "no password on standard input"),
    ],
)
def test_create_refuses_bad_input_with_exit_code_2(
    use_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    password: str,
    message: str,
) -> None:
    stdin(monkeypatch, password + ("\n" if password else ""))
    assert main(["user", "create", *args, "--password-stdin"]) == 2
    assert message in capsys.readouterr().err


def test_an_existing_user_is_a_failure(
    use_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert create(monkeypatch, "bob") == 0
    assert create(monkeypatch, "BOB") == 1
    assert "already exists" in capsys.readouterr().err


def test_list_set_password_disable_enable(
    use_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["user", "list"]) == 0
    assert "no users" in capsys.readouterr().out
    create(monkeypatch, "bob")
    create(monkeypatch, "amy", "--admin")
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["amy", "admin", "active"]
    assert lines[1].split() == ["bob", "active"]
    stdin(monkeypatch, "a brand new password\n")
    assert main(["user", "set-password", "bob", "--password-stdin"]) == 0
    stdin(monkeypatch, "short\n")
    assert main(["user", "set-password", "bob", "--password-stdin"]) == 2
    assert main(["user", "set-password", "nobody", "--password-stdin"]) == 2  # stdin empty now
    stdin(monkeypatch, "a brand new password\n")
    assert main(["user", "set-password", "nobody", "--password-stdin"]) == 1
    # Not a terminal and no --password-stdin: refused rather than hanging on a prompt.
    stdin(monkeypatch, "")
    assert main(["user", "set-password", "bob"]) == 2
    assert main(["user", "disable", "bob"]) == 0
    assert main(["user", "disable", "amy"]) == 1  # the last active admin
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    assert "disabled" in capsys.readouterr().out.splitlines()[1]
    assert main(["user", "enable", "bob"]) == 0


def test_roles_are_set_per_app_and_checked(
    use_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for key in ("north", "south"):
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(f.app(key, roles=[{"key": "doctor"}, {"key": "nurse"}])))
        assert main(["app", "import", str(path)]) == 0
    create(monkeypatch, "bob")
    assert main(["user", "roles", "bob", "north", "doctor", "nurse"]) == 0
    assert main(["user", "roles", "bob", "south", "nurse"]) == 0
    assert main(["user", "roles", "bob", "south", "surgeon"]) == 2
    err = capsys.readouterr().err
    assert "/south/0" in err and "declares no role 'surgeon'" in err
    assert main(["user", "roles", "bob", "nowhere", "doctor"]) == 2
    assert main(["user", "roles", "nobody", "north", "doctor"]) == 1
    capsys.readouterr()
    main(["user", "list"])
    assert "north: doctor, nurse; south: nurse" in capsys.readouterr().out
    assert main(["user", "roles", "bob", "north"]) == 0
    capsys.readouterr()
    main(["user", "list"])
    assert "north" not in capsys.readouterr().out
    changes = asyncio.run(audit_rows(use_database, "user.roles_changed"))
    assert len(changes) == 3 and changes[0]["detail"]["after"] == {"north": ["doctor", "nurse"]}


def test_audit_export_as_json_lines_and_csv(
    use_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    create(monkeypatch, "bob")
    create(monkeypatch, "amy")
    main(["user", "disable", "amy"])
    capsys.readouterr()
    assert main(["audit", "export"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["user.created", "user.created", "user.disabled"]
    assert lines[0]["detail"]["username"] == "bob" and lines[0]["id"] < lines[1]["id"]
    assert main(["audit", "export", "--action", "user.disabled"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    target = tmp_path / "audit.csv"
    assert main(["audit", "export", "--format", "csv", "-o", str(target), "--action", "user."]) == 0
    assert "3 audit entries written" in capsys.readouterr().err
    with target.open(encoding="utf-8") as written:
        rows = list(csv.DictReader(written))
    assert [r["action"] for r in rows] == ["user.created", "user.created", "user.disabled"]
    assert json.loads(rows[2]["detail"]) == {"username": "amy"} and rows[0]["app"] == ""
    assert main(["audit", "export", "--since", "2999-01-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "export", "--since", "2026-01-01"]) == 2
    assert "no time zone" in capsys.readouterr().err
    assert main(["audit", "export", "--until", "yesterday"]) == 2
