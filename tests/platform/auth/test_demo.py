"""The demo's platform admin: a random password, printed once, different for every database."""

from __future__ import annotations

from pathlib import Path

import pytest

from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.demo import ensure_admin
from formloom.platform.deps import Platform
from formloom.platform.migrate import upgrade
from formloom.platform.settings import Settings
from tests.conftest import running_service


async def test_the_demo_admin_password_is_random_and_printed_once(
    settings: Settings, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(settings.database_url)
    other = Database(f"sqlite+aiosqlite:///{tmp_path}/other.db")
    try:
        state = Platform(settings=settings, db=db, catalog=AppCatalog(), clock=clock)
        password = await ensure_admin(state)
        assert password is not None and len(password) >= 20
        out = capsys.readouterr().out
        assert out.count(password) == 1 and "'admin'" in out
        assert await ensure_admin(state) is None
        assert capsys.readouterr().out == ""

        await upgrade(other)
        elsewhere = Platform(settings=settings, db=other, catalog=AppCatalog(), clock=clock)
        second = await ensure_admin(elsewhere)
        assert second is not None and second != password
    finally:
        await db.dispose()
        await other.dispose()

    async with running_service(settings, clock) as c:
        body = {"username": "admin", "password": password}
        response = await c.post("/api/auth/token", json=body)
        assert response.status_code == 200
        me = await c.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
        )
        assert me.json()["is_admin"] is True
