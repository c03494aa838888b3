"""Browser tests: a real ``formloom serve --demo`` process and Debian's Chromium, driven by
Playwright's Python package (``executable_path=/usr/bin/chromium``; Playwright does not
download browsers here). ``.ci/run`` installs Chromium with apt-get; without it these tests
fail with a message saying so (they do not skip).

The server runs on its own SQLite file with the clinic CRM demo installed, an ``admin``
whose password the tests know, and the cheap password-hash profile.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("FORMLOOM_CHROMIUM", "/usr/bin/chromium")
ADMIN = "admin"
ADMIN_PASSWORD = "ui-tests-admin-pw"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]

    @contextmanager
    def api(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> Iterator[httpx.Client]:
        """An API client signed in with a bearer token: ``with live_server.api() as api:``."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            answer = client.post(
                "/api/auth/token", json={"username": username, "password": password}
            )
            answer.raise_for_status()
            client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            yield client

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "formloom.platform.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextmanager
def serving(
    folder: Path, *, demo: bool = True, password: str = ADMIN_PASSWORD
) -> Iterator[LiveServer]:
    """A ``formloom serve`` process on a fresh SQLite file in ``folder`` (the clinic demo
    with ``demo``), with the platform admin ``admin`` signed in by ``password``; stopped on
    exit. Used by the browser tests, the designer benchmark and the README screenshots."""
    env = {
        **os.environ,
        "FORMLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'ui.db'}",
        "FORMLOOM_PASSWORD_HASH": "fast-test-only",
        "FORMLOOM_MIN_PASSWORD_LENGTH": "8",
    }
    port = _free_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", env=env)
    made = server.cli("user", "create", ADMIN, "--admin", "--password-stdin", stdin=password)
    assert made.returncode == 0, made.stderr
    command = [sys.executable, "-m", "formloom.platform.cli", "serve", "--port", str(port)]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        command + (["--demo"] if demo else []),
        env=env,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180  # the demo seeds the clinic; slow on a busy machine
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                if httpx.get(f"{server.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start in 180 s"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("ui-server")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"Chromium is not at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(.ci/run does) or point FORMLOOM_CHROMIUM at it"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def sign_in(page: object, server: LiveServer, username: str, password: str) -> None:
    """Sign in through the sign-in page, as a person would."""
    page.goto(f"{server.url}/signin")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(lambda url: "/signin" not in url)  # type: ignore[attr-defined]


@pytest.fixture
def page(browser: object, live_server: LiveServer) -> Iterator[object]:
    """A fresh browser context (no cookies) with English preferred, signed in as admin."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
    yield tab
    context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"
