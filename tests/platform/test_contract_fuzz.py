"""Schemathesis against the live server, on SQLite and PostgreSQL: every operation of the
document a signed-in user is served, fuzzed with the checks that the contract is complete —
no server error, no status the document does not list, 405 with an ``Allow`` header for a
method a path does not serve, and ``Allow`` matching the document on ``OPTIONS``.

The user holds the clinic's ``admin`` role (every action on every clinic form, so every typed
operation is in their document) without being a platform admin: platform-wide operations
answer 401/403 to them, which the document must list as well. The run is bounded (a fixed
number of examples per operation, deterministic generation) to stay within about a minute per
database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

import formloom.builtin_apps
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests.conftest import TestUser, Users
from tests.platform.test_contract_statuses import live_server

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
#: Operations that end the fuzzer's own session, which would turn every later case into a
#: 401: signing out (DELETE /api/auth/session, POST /api/auth/logout) and changing the
#: password (which revokes the caller's other credentials).
UNSAFE = r"^/api/auth/(session|logout|password)$"
#: Operations that plan (and may apply) a whole new app definition — an import, a rollback,
#: a form, rule, report, dashboard, flow or access save, a draft simulation: each case costs
#: a check of the clinic's 200 KB definition, so the coverage phase's many cases on them took
#: most of the run. They get a run of their own with fewer cases (their statuses and errors
#: are tested one by one in tests/platform/apps and test_contract_statuses.py).
DEFINITIONS = (
    r"/api/apps/import|/api/apps/\{app\}/(rollback|forms/\{form\}(/access)?"
    r"|(rules|reports|dashboards|flows)/\{[a-z_]+\}(/try)?)|/api/flows/\{app\}/\{flow\}/simulate"
)


async def test_schemathesis_finds_no_server_error_and_no_undocumented_status(
    settings: Settings, clock: FixedClock, admin: TestUser, users: Users, tmp_path: Path
) -> None:
    clinic_admin = await users.create(
        "clinic_admin", roles={"clinic_crm": ["admin"]}, attributes={"department": "general"}
    )
    with live_server(settings, clock) as url:
        async with httpx.AsyncClient(base_url=url, headers=admin.headers, timeout=60) as http:
            imported = await http.post(
                "/api/apps/import", json=formloom.builtin_apps.load("clinic_crm")
            )
        assert imported.status_code == 201, imported.text
        base = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {clinic_admin.token}",
            "--checks",
            ",".join(CHECKS),
            # the same cases every run, and no example database written anywhere
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ]
        runs = [
            # everything else: examples, the coverage phase's edge cases, then fuzzing
            [*base, "--phases", "examples,coverage,fuzzing", "--max-examples", "5",
             "--exclude-path-regex", f"^(?:{UNSAFE[1:-1]}|{DEFINITIONS})$"],
            # the definition saves: examples and a few fuzzed cases each
            [*base, "--phases", "examples,fuzzing", "--max-examples", "3",
             "--include-path-regex", f"^(?:{DEFINITIONS})$"],
        ]  # fmt: skip
        for command in runs:
            # The server runs on its own thread and loop; wait for the fuzzer off this one.
            run = await asyncio.to_thread(
                subprocess.run,
                command,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            report = run.stdout + run.stderr
            assert run.returncode == 0, report[-20_000:]
            assert "Tested:" in report and " passed" in report, report[-5_000:]
