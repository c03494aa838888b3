"""The demo's users, one per clinic role, show the grants at work."""

from __future__ import annotations

import re

import httpx
import pytest

from formloom.platform.api import create_app
from formloom.platform.clock import SystemClock
from formloom.platform.demo import install_demo
from formloom.platform.settings import Settings


async def test_demo_role_users_see_what_their_role_allows(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings, clock=SystemClock("Asia/Shanghai"))
    async with app.router.lifespan_context(app):
        await install_demo(app.state.platform, patients=12)
        printed = capsys.readouterr().out
        passwords = dict(re.findall(r"sign in as '(demo_\w+)' .* with password (\S+)", printed))
        assert set(passwords) == {"demo_manager", "demo_doctor", "demo_nurse", "demo_front_desk"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            async def token(name: str) -> dict[str, str]:
                answer = await c.post(
                    "/api/auth/token", json={"username": name, "password": passwords[name]}
                )
                assert answer.status_code == 200, answer.text
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            nurse = await token("demo_nurse")
            me = (await c.get("/api/auth/me", headers=nurse)).json()
            department = me["attributes"]["department"]
            visits = (await c.get("/api/records/clinic_crm/visit?limit=100", headers=nurse)).json()
            assert visits["items"], "the nurse's department has visits in the demo"
            assert {v["data"]["department"] for v in visits["items"]} == {department}
            patients = (await c.get("/api/records/clinic_crm/patient", headers=nurse)).json()
            assert all("id_number" not in p["data"] for p in patients["items"])
            desk = await token("demo_front_desk")
            denied = await c.post("/api/records/clinic_crm/visit", json={"data": {}}, headers=desk)
            assert denied.status_code == 403
        # a second start on the same database prints no password
        await install_demo(app.state.platform, patients=12)
        assert "password" not in capsys.readouterr().out
