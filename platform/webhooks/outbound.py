"""Webhook subscriptions on the way out (docs/webhooks.md).

A record write calls :func:`enqueue` in its unit of work: one outbox row per active
subscription of the app whose events (and form, if it names one) match, with the record's
data as stored (typed JSON: numbers stay numbers). The key ``sub:<subscription>:<record>:
<version>`` makes each delivery unique, so a write repeated after a crash queues nothing
twice. The worker delivers the rows (:func:`delivery`): it signs the exact body it sends
with the subscription's secret (:func:`signature`), as Stripe and GitHub do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.logic.dates import format_datetime
from formloom.platform.models.automation import OutboxMessage
from formloom.platform.models.webhook import WebhookSubscription
from formloom.platform.records.ids import new_id

__all__ = ["EVENTS", "KIND", "delivery", "enqueue", "signature"]

#: The outbox kind of a subscription's message.
KIND = "subscription"
EVENTS = ("record.created", "record.updated", "record.deleted")
RecordEvent = Literal["record.created", "record.updated", "record.deleted"]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC, ``Z`` suffix."""
    return format_datetime(moment.astimezone(UTC))


async def enqueue(
    session: AsyncSession,
    app: str,
    form: str,
    event: RecordEvent,
    *,
    record_id: str,
    version: int,
    data: Mapping[str, Any],
    now: datetime,
) -> int:
    """Queue the write's deliveries (one indexed query when the app has none)."""
    subscriptions = (
        await session.execute(
            select(WebhookSubscription).where(
                WebhookSubscription.app == app, WebhookSubscription.active.is_(True)
            )
        )
    ).scalars()
    queued = 0
    for sub in subscriptions:
        if event not in sub.events or (sub.form is not None and sub.form != form):
            continue
        shown = dict(data) if sub.fields is None else {k: data[k] for k in sub.fields if k in data}
        payload = {
            "subscription": sub.id,
            "event": event,
            "app": app,
            "form": form,
            "record_id": record_id,
            "version": version,
            "occurred_at": utc_text(now),
            "data": shown,
        }
        session.add(
            OutboxMessage(
                id=new_id(),
                app=app,
                rule=f"webhook:{sub.id}",
                kind=KIND,
                channel=None,
                idempotency_key=f"sub:{sub.id}:{record_id}:{version}",
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                last_error=None,
                created_at=now,
                delivered_at=None,
            )
        )
        queued += 1
    return queued


def delivery(
    payload: Mapping[str, Any], delivery_id: str, key: str, secret: str, now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt: the body is the stored event plus its
    ``delivery_id`` (the outbox message's id, the same on every attempt); the timestamp is
    the attempt's, so the signature is fresh each time."""
    body = {key_: value for key_, value in payload.items() if key_ != "subscription"}
    body["delivery_id"] = delivery_id
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Formloom-Webhooks",
        "X-Formloom-Event": str(payload.get("event")),
        "X-Formloom-Delivery": delivery_id,
        "X-Formloom-Timestamp": timestamp,
        "X-Formloom-Signature": signature(secret, timestamp, raw),
        "Idempotency-Key": key,
    }
    return raw, headers
