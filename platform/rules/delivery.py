"""Delivering outbox messages: the in-app inbox, e-mail over SMTP, an HTTP gateway for text
messages (SMS, WeChat) and webhooks.

Templates are rendered here, at delivery, in each recipient's language (their saved UI
language, else the app's first locale). A failure raises :class:`DeliveryFailed`; the worker
retries it with backoff unless it is ``permanent`` (a template that does not render, a
channel that is not configured), which goes to the dead letters at once — retrying would
fail the same way. Receivers get an idempotency key (the ``Idempotency-Key`` header, the
``idempotency_key`` field) so a retry after a lost answer can be recognised.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx
from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.rules import (
    PlanFormatError,
    PlannedNotify,
    PlannedWebhook,
    render_template,
    render_value,
)
from formloom.engines.rules.templates import sole_expression
from formloom.platform.db import Database
from formloom.platform.models import User, UserRole
from formloom.platform.models.automation import Notification
from formloom.platform.models.webhook import WebhookSubscription
from formloom.platform.records.ids import new_id
from formloom.platform.rules.automation import outbox_action
from formloom.platform.settings import Settings
from formloom.platform.webhooks import outbound


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Recipient:
    """Someone to reach: a user (with their language) or a bare address."""

    user_id: str | None
    locale: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Message:
    """An outbox row as the worker claimed it."""

    id: str
    app: str
    rule: str
    kind: str
    channel: str | None
    key: str
    payload: Mapping[str, Any]
    attempts: int
    locale: str  # the app's first locale

    @property
    def form(self) -> str | None:
        """The form of the record the message was planned for."""
        return self.payload.get("form") or None

    @property
    def record_id(self) -> str | None:
        return self.payload.get("record_id")

    def action(self) -> PlannedNotify | PlannedWebhook:
        """The planned action to deliver, whatever format the row was written in; one
        that cannot be read is a permanent failure."""
        try:
            return outbox_action(self.kind, self.rule, self.key, self.payload)
        except PlanFormatError as error:
            raise DeliveryFailed(f"the message cannot be read: {error}", permanent=True) from None


def render(
    text: Any,
    context: Mapping[str, Any],
    locale: str,
    what: str,
    zone: str | None = None,
    named: bool = False,
) -> str:
    """A text rendered; ``zone`` (the record's) for a text a person reads, none for a
    webhook's (machines get the stored UTC form); ``named`` when it is not the
    deployment's zone (times name it)."""
    try:
        return render_template(text, context, locale, zone, named=named)
    except TemplateError as error:
        raise DeliveryFailed(f"the {what} template failed: {error}", permanent=True) from None
    except Exception as error:  # noqa: BLE001 - a sandboxed template can raise anything
        raise DeliveryFailed(
            f"the {what} template failed: {type(error).__name__}: {error}", permanent=True
        ) from None


def render_json(value: Any, context: Mapping[str, Any], locale: str, typed: bool = False) -> Any:
    """A webhook body: every string in it is a template. ``typed``: a string that is
    exactly one expression (``"{{ record.pain }}"``) gives the value with its JSON type."""
    if isinstance(value, str):
        if typed and sole_expression(value) is not None:
            try:
                return render_value(value, context)
            except TemplateError as error:
                raise DeliveryFailed(f"the body template failed: {error}", permanent=True) from None
            except Exception as error:  # noqa: BLE001 - a sandboxed template can raise anything
                raise DeliveryFailed(
                    f"the body template failed: {type(error).__name__}: {error}", permanent=True
                ) from None
        return render(value, context, locale, "body")
    if isinstance(value, list):
        return [render_json(item, context, locale, typed) for item in value]
    if isinstance(value, dict):
        return {key: render_json(item, context, locale, typed) for key, item in value.items()}
    return value


async def recipients_of(
    session: AsyncSession, app: str, wanted: Sequence[Mapping[str, Any]], locale: str
) -> list[Recipient]:
    """Users holding a role in the app, users named by id or username, bare addresses."""
    roles = [item["role"] for item in wanted if item.get("role")]
    names = [str(item["user"]) for item in wanted if item.get("user") not in (None, "")]
    found: dict[str, User] = {}
    if roles:
        rows = await session.execute(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.app == app, UserRole.role.in_(roles), User.disabled_at.is_(None))
        )
        found.update((user.id, user) for user in rows.scalars())
    if names:
        rows = await session.execute(
            select(User).where(
                (User.id.in_(names) | User.username.in_([n.lower() for n in names]))
                & User.disabled_at.is_(None)
            )
        )
        found.update((user.id, user) for user in rows.scalars())
    people = [
        Recipient(
            user_id=user.id,
            locale=user.locale or locale,
            email=(user.attributes or {}).get("email"),
            phone=(user.attributes or {}).get("phone"),
        )
        for user in sorted(found.values(), key=lambda user: user.username)
    ]
    addresses = [
        Recipient(user_id=None, locale=locale, address=str(item["address"]))
        for item in wanted
        if item.get("address") not in (None, "")
    ]
    return people + addresses


class Deliverer:
    """Sends one message on its channel (the worker decides what a failure means)."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def deliver(
        self, db: Database, message: Message, now: datetime
    ) -> tuple[str, list[Notification]]:
        """Deliver ``message``: a short description of what was done, and the in-app
        notifications to store (the worker commits them with the message's new state).
        No transaction is open while a server is being called."""
        if message.kind == outbound.KIND:
            return await self._subscription(db, message, now), []
        action = message.action()
        if isinstance(action, PlannedWebhook):
            return await self._webhook(message, action), []
        async with db.transaction(write=False) as session:
            people = await recipients_of(session, message.app, action.recipients, message.locale)
        if not people:
            return "no recipients", []
        channel = action.channel
        if channel == "in_app":
            notes = self._in_app(message, action, people, now)
            return f"{len(notes)} in-app notification(s)", notes
        if channel == "email":
            return await self._email(message, action, people), []
        if channel == "sms_gateway":
            return await self._gateway(message, action, people), []
        raise DeliveryFailed(f"unknown channel {channel!r}", permanent=True)

    def _texts(
        self, message: Message, action: PlannedNotify, recipient: Recipient
    ) -> tuple[str | None, str]:
        context = action.context
        subject = action.subject
        # the record's zone, kept with the message when it is not the deployment's
        home = self.settings.timezone
        kept = message.payload.get("zone")
        zone = kept if isinstance(kept, str) and kept else home
        named = zone != home
        title = (
            render(subject, context, recipient.locale, "subject", zone, named) if subject else None
        )
        body = render(action.template, context, recipient.locale, "message", zone, named)
        return title, body

    def _in_app(
        self, message: Message, action: PlannedNotify, people: list[Recipient], now: datetime
    ) -> list[Notification]:
        notes = []
        for person in people:
            if person.user_id is None:
                continue
            subject, body = self._texts(message, action, person)
            notes.append(
                Notification(
                    id=new_id(),
                    user_id=person.user_id,
                    app=message.app,
                    rule=message.rule,
                    subject=subject[:500] if subject else None,
                    body=body,
                    form=message.form,
                    record_id=message.record_id,
                    source_key=f"{message.key}:{person.user_id}",
                    created_at=now,
                )
            )
        return notes

    async def _email(self, message: Message, action: PlannedNotify, people: list[Recipient]) -> str:
        settings = self.settings
        if not settings.smtp_host:
            raise DeliveryFailed(
                "e-mail is not configured (set FORMLOOM_SMTP_HOST)", permanent=True
            )
        letters = []
        for person in people:
            to = person.address or person.email
            if not to:
                continue
            subject, body = self._texts(message, action, person)
            letter = EmailMessage()
            letter["From"] = settings.smtp_from
            letter["To"] = to
            letter["Subject"] = subject or ""
            letter["X-Idempotency-Key"] = f"{message.key}:{to}"
            letter.set_content(body)
            letters.append(letter)
        if not letters:
            return "no e-mail addresses"

        def send() -> None:
            with smtplib.SMTP(
                settings.smtp_host or "",
                settings.smtp_port,
                timeout=settings.webhook_timeout_seconds,
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_username:
                    smtp.login(settings.smtp_username, settings.smtp_password or "")
                for letter in letters:
                    smtp.send_message(letter)

        try:
            await asyncio.to_thread(send)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"SMTP: {type(error).__name__}: {error}") from None
        return f"{len(letters)} e-mail(s)"

    async def _gateway(
        self, message: Message, action: PlannedNotify, people: list[Recipient]
    ) -> str:
        settings = self.settings
        if not settings.sms_gateway_url:
            raise DeliveryFailed(
                "the text-message gateway is not configured (set FORMLOOM_SMS_GATEWAY_URL)",
                permanent=True,
            )
        headers = {}
        if settings.sms_gateway_token:
            headers["Authorization"] = f"Bearer {settings.sms_gateway_token}"
        sent = 0
        for person in people:
            to = person.address or person.phone
            if not to:
                continue
            subject, body = self._texts(message, action, person)
            key = f"{message.key}:{to}"
            await self._post(
                "POST",
                settings.sms_gateway_url,
                {**headers, "Idempotency-Key": key},
                {"to": to, "text": body, "subject": subject, "idempotency_key": key},
                "gateway",
            )
            sent += 1
        return f"{sent} text message(s)"

    async def _webhook(self, message: Message, action: PlannedWebhook) -> str:
        context = action.context
        headers = {
            name: render(value, context, message.locale, f"header {name}")
            for name, value in action.headers.items()
        }
        headers.setdefault("Idempotency-Key", message.key)
        body = action.body
        rendered = (
            render_json(body, context, message.locale, action.typed) if body is not None else None
        )
        status = await self._post(action.method, action.url, headers, rendered, "webhook")
        return f"webhook answered {status}"

    async def _subscription(self, db: Database, message: Message, now: datetime) -> str:
        """A subscription's event, signed; sent to the subscription's URL as it is now (a
        deleted or inactive subscription's queued events are dropped, not sent)."""
        sub_id = str(message.payload.get("subscription"))
        async with db.transaction(write=False) as session:
            sub = await session.get(WebhookSubscription, sub_id)
            found = (sub.url, sub.secret, sub.active) if sub is not None else None
        if found is None:
            return "not sent: the subscription was deleted"
        url, secret, active = found
        if not active:
            return "not sent: the subscription is inactive"
        raw, headers = outbound.delivery(message.payload, message.id, message.key, secret, now)
        status = await self._post("POST", url, headers, None, "webhook", content=raw)
        return f"webhook answered {status}"

    async def _post(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        what: str,
        *,
        content: bytes | None = None,
    ) -> int:
        try:
            if content is not None:
                answer = await self.http.request(
                    method,
                    url,
                    headers=headers,
                    content=content,
                    timeout=self.settings.webhook_timeout_seconds,
                )
            else:
                answer = await self.http.request(
                    method,
                    url,
                    headers=headers,
                    json=body if method not in ("GET", "DELETE") else None,
                    timeout=self.settings.webhook_timeout_seconds,
                )
        except httpx.TimeoutException:
            raise DeliveryFailed(f"the {what} did not answer in time ({url})") from None
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"the {what} could not be reached: {error}") from None
        if not answer.is_success:
            raise DeliveryFailed(f"the {what} answered {answer.status_code}: {answer.text[:200]}")
        return answer.status_code
