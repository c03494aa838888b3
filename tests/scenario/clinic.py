"""The clinic as its people use it, for the scenario tests: one deployment of Formloom with
the bundled clinic CRM, reached only through its HTTP API, a clock the story moves, the
worker run at the moments the story names, and the outside world as real local servers
(the text-message gateway, the hospital system's webhook receiver, an SMTP server).

Everyone acts with a bearer token issued at the clock's current time (tokens last 12 hours
of clock time, and the story moves the clock by days). Times in the story are written as
the clinic reads them: ``YYYY-MM-DD HH:MM`` in Asia/Shanghai.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.rules.worker import Report, Worker
from formloom.platform.settings import Settings
from tests.conftest import Users, running_service
from tests.servers import HttpSink, Received, SmtpSink, http_sink, smtp_sink

APP = "clinic_crm"
ZONE = ZoneInfo("Asia/Shanghai")
PUBLIC_BASE = "https://clinic.example.com"


def at(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM`` on the clinic's clock."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def local(text: str | None) -> str | None:
    """An API instant as the clinic reads it: ``YYYY-MM-DD HH:MM`` in Shanghai."""
    if text is None:
        return None
    return (
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        .astimezone(ZONE)
        .strftime("%Y-%m-%d %H:%M")
    )


@dataclass
class Outside:
    """The systems outside the clinic's deployment, each a real server on 127.0.0.1."""

    sms: HttpSink  # the text-message gateway
    his: HttpSink  # the hospital information system's webhook receiver
    mail: SmtpSink

    def texts_to(self, phone: str) -> list[str]:
        return [r.body["text"] for r in self.sms.requests if r.body["to"] == phone]

    def texted(self) -> list[str]:
        """The numbers texted so far, in order."""
        return [r.body["to"] for r in self.sms.requests]


@contextmanager
def outside_world() -> Iterator[Outside]:
    with http_sink() as sms, http_sink() as his, smtp_sink() as mail:
        yield Outside(sms, his, mail)


@dataclass
class Clinic:
    """The deployment, its people and its clock."""

    api: httpx.AsyncClient  # no credentials of its own: every call names who makes it
    anonymous: httpx.AsyncClient  # a patient's phone
    users: Users
    clock: FixedClock
    worker: Worker
    outside: Outside
    _tokens: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    service_tokens: dict[str, str] = field(default_factory=dict)

    # -- calls --------------------------------------------------------------------------

    async def headers(self, who: str) -> dict[str, str]:
        if who in self.service_tokens:
            return {"Authorization": f"Bearer {self.service_tokens[who]}"}
        issued = self._tokens.get(who)
        if issued is None or issued[0] != self.clock.now():
            issued = (self.clock.now(), await self.users.token(who))
            self._tokens[who] = issued
        return {"Authorization": f"Bearer {issued[1]}"}

    async def call(
        self,
        who: str,
        method: str,
        url: str,
        json: Any = None,
        *,
        locale: str | None = None,
        **params: Any,
    ) -> httpx.Response:
        headers = await self.headers(who)
        if locale:
            headers["Accept-Language"] = locale
        return await self.api.request(
            method, url, json=json, params=params or None, headers=headers
        )

    async def ok(self, who: str, method: str, url: str, json: Any = None, **params: Any) -> Any:
        answer = await self.call(who, method, url, json, **params)
        assert answer.status_code in (200, 201), f"{who}: {method} {url}: {answer.text}"
        return answer.json() if answer.content else None

    # -- records ------------------------------------------------------------------------

    async def create(self, who: str, form: str, **data: Any) -> str:
        made = await self.ok(who, "POST", f"/api/records/{APP}/{form}", {"data": data})
        return str(made["id"])

    async def update(self, who: str, form: str, record: str, **data: Any) -> None:
        await self.ok(who, "PATCH", f"/api/records/{APP}/{form}/{record}", {"data": data})

    async def read(self, who: str, form: str, record: str) -> dict[str, Any]:
        found = await self.ok(who, "GET", f"/api/records/{APP}/{form}/{record}")
        return dict(found["data"])

    async def around(self, who: str, form: str, record: str) -> dict[str, list[str]]:
        """The record's 360 view as ``who`` sees it: the titles of each related group, by
        form, and ``"timeline"``: the timeline's titles, newest first."""
        found = await self.ok(who, "GET", f"/api/records/{APP}/{form}/{record}/related")
        groups: dict[str, list[str]] = {}
        for group in found["groups"]:
            groups.setdefault(group["form"], []).extend(i["title"] for i in group["items"])
        groups["timeline"] = [str(entry["title"]) for entry in found["timeline"]]
        return groups

    async def query(self, who: str, form: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        found = await self.ok(
            who, "POST", f"/api/records/{APP}/{form}/query", {"filter": where, "limit": 100}
        )
        return [dict(item["data"], id=item["id"]) for item in found["items"]]

    # -- work ---------------------------------------------------------------------------

    async def inbox(self, who: str) -> list[dict[str, Any]]:
        return list((await self.ok(who, "GET", "/api/tasks", app=APP))["items"])

    async def task(self, who: str, node: str, record: str | None = None) -> dict[str, Any]:
        (found,) = [
            t
            for t in await self.inbox(who)
            if t["node"] == node and record in (None, t["record_id"])
        ]
        return found

    async def do(self, who: str, node: str, record: str | None = None, **body: Any) -> None:
        """``who`` takes the open ``node`` task of their inbox (on ``record``), claiming it
        when it must be claimed, and completes it with ``body`` (outcome, values,
        comment)."""
        task = await self.task(who, node, record)
        if task["claim_required"] and task["assignee"] is None:
            await self.ok(who, "POST", f"/api/tasks/{task['id']}/claim")
        await self.ok(who, "POST", f"/api/tasks/{task['id']}/complete", body)

    async def notes(self, who: str) -> list[str]:
        found = await self.ok(who, "GET", "/api/notifications")
        return [str(note["subject"]) for note in found["items"]]

    async def tick(self, when: str) -> Report:
        """Move the clock to ``when`` and let the worker do what is due then."""
        self.clock.at = at(when)
        report = await self.worker.run_once(self.clock.now())
        assert not report.errors, report.to_dict()
        return report

    async def dashboard(self, who: str, **filters: str) -> dict[str, dict[str, Any]]:
        """The manager dashboard's tiles by report key, as ``who`` sees them."""
        found = await self.ok(who, "GET", f"/api/dashboards/{APP}/manager", **filters)
        tiles = {str(item["report"]): dict(item) for item in found["items"]}
        for key, tile in tiles.items():
            assert "error" not in tile, (key, tile)
        return tiles


@asynccontextmanager
async def clinic_deployment(
    settings: Settings, clock: FixedClock, users: Users
) -> AsyncIterator[Clinic]:
    """The clinic's deployment as it would be configured: the clinic's zone, a public base
    URL for the links texted to patients, the text gateway and SMTP of the outside world."""
    async with AsyncExitStack() as stack:
        outside = stack.enter_context(outside_world())
        configured = settings.model_copy(
            update={
                "timezone": "Asia/Shanghai",
                "public_base_url": PUBLIC_BASE,
                "sms_gateway_url": f"{outside.sms.url}/sms",
                "smtp_host": outside.mail.host,
                "smtp_port": outside.mail.port,
                "smtp_from": "clinic@clinic.example.com",
            }
        )
        api = await stack.enter_async_context(running_service(configured, clock))
        anonymous = await stack.enter_async_context(running_service(configured, clock))
        db = Database(configured.database_url)
        stack.push_async_callback(db.dispose)
        worker = Worker(db, AppCatalog(), configured)
        yield Clinic(api, anonymous, users, clock, worker, outside)


def survey_token(text: str) -> str:
    """The one-time token of the survey link in a text message."""
    found = re.search(re.escape(PUBLIC_BASE) + r"/p/(\S+)", text)
    assert found is not None, text
    return found.group(1)


def signed_by(request: Received, secret: str) -> bool:
    """Whether a webhook delivery carries a valid signature of ``secret`` (docs/webhooks.md:
    HMAC-SHA256 of ``<timestamp>.<body>``)."""
    stamp = request.headers["x-formloom-timestamp"]
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + request.raw, hashlib.sha256)
    given = request.headers["x-formloom-signature"].removeprefix("sha256=")
    return hmac.compare_digest(expected.hexdigest(), given)
