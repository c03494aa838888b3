"""Webhook subscriptions: an app's outbound record events, made by platform admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from formloom.engines.logic.dates import format_datetime
from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class WebhookSubscription(Base):
    """Send the app's record events (``events``, optionally of one ``form``) to ``url``,
    signed with ``secret`` (HMAC-SHA256; stored as is, since signing needs it: see
    docs/security.md, "Webhook subscriptions"). ``fields`` (``None``: all) narrows the
    record data a delivery carries."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JsonDocument)
    form: Mapped[str | None] = mapped_column(String(63), nullable=True)
    fields: Mapped[list[str] | None] = mapped_column(JsonDocument, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webhook_subscriptions_app", "app", "active"),)


def public(row: WebhookSubscription) -> dict[str, Any]:
    """The subscription as the API shows it: never its secret."""
    return {
        "id": row.id,
        "app": row.app,
        "url": row.url,
        "events": list(row.events),
        "form": row.form,
        "fields": list(row.fields) if row.fields is not None else None,
        "active": row.active,
        "description": row.description,
        "created_by": row.created_by,
        "created_at": format_datetime(row.created_at),
    }
