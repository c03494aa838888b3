"""Webhook subscriptions over HTTP: ``/api/apps/{app}/webhooks`` (docs/webhooks.md).

Platform admins only (or an admin's token scoped to the app): a subscription sends every
matching record of the app, hidden fields included, to a URL outside. The secret is shown
once, in the answer to the creation, and never again.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from formloom.platform.audit.log import audit
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import NotFound, Unprocessable
from formloom.platform.models.webhook import WebhookSubscription, public
from formloom.platform.permissions import guard
from formloom.platform.records.ids import new_id

router = APIRouter(prefix="/api/apps", tags=["webhooks"])
Event = Literal["record.created", "record.updated", "record.deleted"]


class NewSubscription(BaseModel):
    """A webhook subscription to create."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="Where events are POSTed (http or https).")
    events: list[Event] = Field(min_length=1, description="The record events to send.")
    form: str | None = Field(default=None, description="Only this form's records.")
    fields: list[str] | None = Field(
        default=None,
        description="Only these fields of the record's data (default: all, hidden ones too).",
    )
    active: bool = Field(default=True, description="An inactive subscription sends nothing.")
    description: str | None = Field(default=None, max_length=500)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http or https URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[Event]) -> list[Event]:
        return sorted(set(value), key=value.index)


def _refused(path: str, message: str) -> Unprocessable:
    return Unprocessable(
        "The subscription is not valid.",
        errors=[{"in": "body", "path": path, "code": "invalid_value", "message": message}],
    )


@router.post("/{app}/webhooks", status_code=201)
async def create_webhook(
    app: str, p: PlatformDep, who: PrincipalDep, body: Annotated[NewSubscription, Body()]
) -> dict[str, Any]:
    """Subscribe a URL to the app's record events. The answer holds the signing
    ``secret``: it is shown this once."""
    guard.require_admin(who, app, "manage webhooks")
    now = p.clock.now()
    async with p.db.transaction() as session:
        installed = await p.catalog.get(session, app)
        if body.form is not None and body.form not in installed.forms:
            raise _refused("/form", f"app '{app}' has no form '{body.form}'")
        if body.fields is not None:
            forms = [installed.forms[body.form]] if body.form else installed.forms.values()
            known = {f.key for spec in forms for f in spec.value_fields()}
            for index, name in enumerate(body.fields):
                if name not in known:
                    raise _refused(f"/fields/{index}", f"no such field: '{name}'")
        row = WebhookSubscription(
            id=new_id(),
            app=app,
            url=body.url,
            events=list(body.events),
            form=body.form,
            fields=body.fields,
            active=body.active,
            secret=f"whsec_{secrets.token_urlsafe(32)}",
            description=body.description,
            created_by=who.username,
            created_at=now,
        )
        session.add(row)
        audit(session, who, "webhook.create", at=now, app=app,
              detail={"id": row.id, "url": row.url, "events": row.events})  # fmt: skip
        shown = public(row)
        shown["secret"] = row.secret
    return shown


@router.get("/{app}/webhooks")
async def list_webhooks(app: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """The app's subscriptions (without their secrets)."""
    guard.require_admin(who, app, "read webhooks")
    async with p.db.transaction(write=False) as session:
        await p.catalog.get(session, app)
        rows = (
            await session.execute(
                select(WebhookSubscription)
                .where(WebhookSubscription.app == app)
                .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
            )
        ).scalars()
        return {"items": [public(row) for row in rows]}


async def _one(session: Any, app: str, webhook_id: str) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, webhook_id)
    if row is None or row.app != app:
        raise NotFound(f"App '{app}' has no webhook subscription '{webhook_id}'.")
    return row  # type: ignore[no-any-return]


@router.get("/{app}/webhooks/{webhook_id}")
async def read_webhook(
    app: str, webhook_id: str, p: PlatformDep, who: PrincipalDep
) -> dict[str, Any]:
    """One subscription (without its secret)."""
    guard.require_admin(who, app, "read webhooks")
    async with p.db.transaction(write=False) as session:
        return public(await _one(session, app, webhook_id))


@router.delete("/{app}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(app: str, webhook_id: str, p: PlatformDep, who: PrincipalDep) -> Response:
    """Remove a subscription; its queued events are dropped at delivery, not sent."""
    guard.require_admin(who, app, "manage webhooks")
    now = p.clock.now()
    async with p.db.transaction() as session:
        row = await _one(session, app, webhook_id)
        await session.delete(row)
        audit(session, who, "webhook.delete", at=now, app=app,
              detail={"id": webhook_id, "url": row.url})  # fmt: skip
    return Response(status_code=204)
