"""Public links: a form published to someone without an account, for one submission.

A clinic texts a patient a satisfaction survey after a visit: the link lets its holder see
that one form and submit it once, optionally pre-bound to a record (the visit: the survey's
relation field is set by the link, not by the patient), until it expires. It exposes nothing
else — no records, no other forms, not even the bound record's contents.

The token is ``<link id>.<secret>``; only the SHA-256 of the secret is stored (it is 256
random bits, so a fast hash is right; argon2 is for passwords), and it is shown once. A
submission claims the link with one conditional UPDATE in the same unit of work as the new
record, so two simultaneous submissions cannot both succeed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FormSpec
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.audit.log import audit
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import BadRequest, Gone, NotFound, Unprocessable
from formloom.platform.models.public_link import PublicLink
from formloom.platform.records.ids import is_id, new_id
from formloom.platform.records.service import RecordService, iso

DEFAULT_HOURS = 7 * 24
MAX_HOURS = 90 * 24
INVALID = "This link is not valid."
USED_UP = "This link has expired, was withdrawn or has already been used."


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def link_out(link: PublicLink, now: datetime) -> dict[str, Any]:
    state = "active"
    if link.revoked_at is not None:
        state = "revoked"
    elif link.submissions >= link.max_submissions:
        state = "used"
    elif link.expires_at <= now:
        state = "expired"
    return {
        "id": link.id,
        "app": link.app,
        "form": link.form,
        "label": link.label,
        "bound_to": (
            {"field": link.bind_field, "record": link.bind_record} if link.bind_field else None
        ),
        "state": state,
        "created_at": iso(link.created_at),
        "created_by": link.created_by,
        "expires_at": iso(link.expires_at),
        "submissions": link.submissions,
        "last_submitted_at": iso(link.last_submitted_at) if link.last_submitted_at else None,
        "record_id": link.last_record_id,
    }


def _body_error(path: str, code: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"The link cannot be created: {message}.",
        errors=[{"path": path, "code": code, "message": message}],
    )


class LinkService:
    """Links of one caller (who creates, lists and withdraws them) or of the public."""

    def __init__(
        self, session: AsyncSession, catalog: AppCatalog, *, principal: Principal, now: datetime
    ) -> None:
        self.session = session
        self.catalog = catalog
        self.principal = principal
        self.now = now
        self.records = RecordService(session, catalog, principal=principal, now=now)

    async def _creatable(self, app: str, form: str) -> tuple[InstalledApp, FormSpec]:
        """Whoever may create records of a form may hand that right to a link holder."""
        installed, spec = await self.records.load_form(app, form)
        self.records.allowed(installed, form, "create")
        return installed, spec

    async def create(self, app: str, form: str, body: Any) -> tuple[PublicLink, str]:
        installed, spec = await self._creatable(app, form)
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.")
        unknown = sorted(set(body) - {"label", "expires_in_hours", "bind"})
        if unknown:
            raise _body_error(f"/{unknown[0]}", "unknown_property", "is not a known property")
        hours = body.get("expires_in_hours", DEFAULT_HOURS)
        if type(hours) not in (int, float) or not 0 < hours <= MAX_HOURS:
            raise _body_error(
                "/expires_in_hours",
                "range",
                f"expires_in_hours must be a number above 0 and at most {MAX_HOURS}",
            )
        label = body.get("label")
        if label is not None and (not isinstance(label, str) or not 0 < len(label) <= 200):
            raise _body_error("/label", "type", "label must be a text of 1 to 200 characters")
        bind_field = bind_record = None
        bind = body.get("bind")
        if bind is not None:
            bind_field, bind_record = await self._binding(installed, spec, bind)
        secret = secrets.token_urlsafe(32)
        link = PublicLink(
            id=new_id(),
            secret_hash=_digest(secret),
            app=app,
            form=form,
            label=label,
            bind_field=bind_field,
            bind_record=bind_record,
            max_submissions=1,
            submissions=0,
            created_at=self.now,
            created_by=self.principal.username,
            expires_at=self.now + timedelta(hours=float(hours)),
        )
        self.session.add(link)
        audit(
            self.session,
            self.principal,
            "public_link.created",
            at=self.now,
            app=app,
            form=form,
            record_id=bind_record,
            detail={"link": link.id, "expires_at": iso(link.expires_at)},
        )
        await self.session.flush()
        return link, f"{link.id}.{secret}"

    async def _binding(self, installed: InstalledApp, spec: FormSpec, bind: Any) -> tuple[str, str]:
        if not isinstance(bind, dict) or set(bind) != {"field", "record"}:
            raise _body_error("/bind", "type", 'bind must be {"field": ..., "record": ...}')
        key, record_id = bind["field"], bind["record"]
        field = spec.field(key) if isinstance(key, str) else None
        if field is None or field.type != "relation":
            raise _body_error(
                "/bind/field", "unknown_field", f"{key!r} is not a relation field of {spec.key}"
            )
        target = getattr(field, "target", None)
        assert isinstance(target, str)
        if not is_id(record_id):
            raise _body_error("/bind/record", "invalid_id", "record must be a record id")
        # The creator must be able to read the record the link is bound to (a 404 if not).
        await self.records.get(installed.key, target, record_id)
        return key, record_id

    async def list(self, app: str, form: str) -> list[dict[str, Any]]:
        await self._creatable(app, form)
        query = (
            select(PublicLink)
            .where(PublicLink.app == app, PublicLink.form == form)
            .order_by(PublicLink.id.desc())
            .limit(500)
        )
        links = (await self.session.execute(query)).scalars()
        return [link_out(link, self.now) for link in links]

    async def revoke(self, app: str, form: str, link_id: str) -> None:
        await self._creatable(app, form)
        link = await self.session.get(PublicLink, link_id) if is_id(link_id) else None
        if link is None or link.app != app or link.form != form:
            raise NotFound(f"No link '{link_id[:40]}' for form {form}.")
        if link.revoked_at is None:
            link.revoked_at = self.now
            audit(
                self.session,
                self.principal,
                "public_link.revoked",
                at=self.now,
                app=app,
                form=form,
                detail={"link": link.id},
            )
            await self.session.flush()


async def _by_token(session: AsyncSession, token: str) -> PublicLink:
    link_id, _, secret = token.partition(".")
    link = await session.get(PublicLink, link_id) if is_id(link_id) and secret else None
    if link is None or not hmac.compare_digest(link.secret_hash, _digest(secret)):
        raise NotFound(INVALID)
    return link


def _usable(link: PublicLink, now: datetime) -> bool:
    return (
        link.revoked_at is None
        and link.submissions < link.max_submissions
        and link.expires_at > now
    )


async def public_form(
    session: AsyncSession, catalog: AppCatalog, token: str, now: datetime
) -> dict[str, Any]:
    """What the link's holder sees: the form to fill in, without the bound field."""
    link = await _by_token(session, token)
    if not _usable(link, now):
        raise Gone(USED_UP)
    installed = await catalog.get(session, link.app)
    document = next(f for f in installed.document["forms"] if f.get("key") == link.form)
    fields = [f for f in document.get("fields", []) if f.get("key") != link.bind_field]
    return {
        "app": {"key": installed.key, "label": installed.spec.label},
        "locales": installed.spec.locales,
        "form": {**document, "fields": fields},
        "label": link.label,
        "expires_at": iso(link.expires_at),
    }


async def submit(
    session: AsyncSession, catalog: AppCatalog, token: str, data: Any, now: datetime
) -> dict[str, Any]:
    link = await _by_token(session, token)
    if link.bind_field and isinstance(data, dict) and link.bind_field in data:
        raise Unprocessable(
            "The link sets this field itself.",
            errors=[
                {
                    "field": link.bind_field,
                    "path": f"/data/{link.bind_field}",
                    "code": "forbidden_field",
                    "message": "set by the link",
                }
            ],
        )
    claimed = await session.execute(
        update(PublicLink)
        .where(
            PublicLink.id == link.id,
            PublicLink.revoked_at.is_(None),
            PublicLink.submissions < PublicLink.max_submissions,
            PublicLink.expires_at > now,
        )
        .values(submissions=PublicLink.submissions + 1, last_submitted_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone(USED_UP)
    principal = Principal(
        username=f"public-link:{link.id}", is_admin=True, app_scope=link.app, via="public_link"
    )
    values = dict(data) if isinstance(data, dict) else data
    if link.bind_field and isinstance(values, dict):
        values[link.bind_field] = link.bind_record
    service = RecordService(session, catalog, principal=principal, now=now)
    record = await service.create(link.app, link.form, values)
    await session.execute(
        update(PublicLink)
        .where(PublicLink.id == link.id)
        .values(last_record_id=record.id)
        .execution_options(synchronize_session=False)
    )
    audit(
        session,
        principal,
        "public_link.submitted",
        at=now,
        app=link.app,
        form=link.form,
        record_id=record.id,
        version=record.version,
        detail={"link": link.id},
    )
    return {"status": "submitted", "submitted_at": iso(now)}
