"""The real ``formloom serve`` process over real HTTP: the demo, and the example API client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_APPS = sorted((ROOT / "examples" / "apps").glob("*.json"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "FORMLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db"}


def _serve(tmp_path: Path, *extra: str, console: list[str] | None = None) -> Iterator[str]:
    """Run ``formloom serve``; the lines it printed up to start-up go to ``console``."""
    port = _free_port()
    env = _env(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "formloom.platform.cli", "serve", "--port", str(port), *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"formloom serve exited early:\n{output}")
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("formloom serve did not answer within 60 s")
        if console is not None and process.stdout is not None:
            # Start-up is complete, so every line up to uvicorn's "startup complete" is there.
            for _ in range(100):
                line = process.stdout.readline().decode()
                console.append(line)
                if "startup complete" in line or not line:
                    break
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        finally:
            if process.stdout is not None:
                process.stdout.close()


ADMIN_PASSWORD = "example admin password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    created = subprocess.run(
        [sys.executable, "-m", "formloom.platform.cli", "user", "create", "ops", "--admin"]
        + ["--password-stdin"],
        input=ADMIN_PASSWORD + "\n",
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    yield from _serve(tmp_path)


def test_serve_demo_has_the_clinic_crm_with_sample_data(tmp_path: Path) -> None:
    console: list[str] = []
    for demo in _serve(tmp_path, "--demo", console=console):
        said = [line for line in console if "Demo admin" in line]
        assert len(said) == 1, console
        password = said[0].split("with password ")[1].split()[0]
        signed_in = httpx.post(
            f"{demo}/api/auth/token", json={"username": "admin", "password": password}
        )
        assert signed_in.status_code == 200, signed_in.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        assert httpx.get(f"{demo}/api/apps").status_code == 401
        apps = httpx.get(f"{demo}/api/apps", headers=headers).json()
        assert [a["key"] for a in apps] == ["clinic_crm"]
        app = httpx.get(f"{demo}/api/apps/clinic_crm", headers=headers).json()
        counts = {form["key"]: form["records"] for form in app["forms"]}
        assert counts["patient"] == 40 and counts["staff"] == 9 and counts["visit"] > 0
        docs = httpx.get(f"{demo}/docs")
        assert docs.status_code == 200
    # Started again on the same database: the admin exists, no password is printed.
    console.clear()
    for _demo in _serve(tmp_path, "--demo", console=console):
        assert not [line for line in console if "password" in line], console


def test_the_example_api_client_runs_against_a_real_server(server: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_client.py"), server],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FORMLOOM_USERNAME": "ops", "FORMLOOM_PASSWORD": ADMIN_PASSWORD},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "status': 'created'" in out
    assert out.count("detractor:") == 2
    assert "refused: 422" in out and '"code": "required"' in out
    assert "history: 2 update ['respondent']" in out


@pytest.mark.parametrize(
    "path",
    [builtin_apps.path(name) for name in builtin_apps.available()] + EXAMPLE_APPS,
    ids=lambda p: p.name if isinstance(p, Path) else str(p),
)
def test_every_bundled_and_example_app_is_valid(path: Path) -> None:
    assert cli(["check", str(path)]) == 0


def test_there_are_example_apps() -> None:
    assert EXAMPLE_APPS
