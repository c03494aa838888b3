"""Public links: a form published to someone without an account, for one submission.

A clinic texts a patient a satisfaction survey after a visit: the link lets its holder see
that one form and submit it once, optionally pre-bound to a record (the visit: the survey's
relation field is set by the link, not by the patient), until it expires. It exposes nothing
else — no records, no other forms, not even the bound record's contents.

**A link never lets its holder do more than its creator still may.** A submission is written
with the grant of the user who created the link, re-resolved from that user's roles and
attributes *when the link is used*: the create action, its row filter, the creator's hidden
and read-only fields, and read access to every record a relation points at (the bound one
included). A creator who was disabled, deleted or lost the create grant — or a bound record
the creator can no longer read, or a form that is gone — makes the link answer 410, as a
used-up link does. The holder fills in only the link's ``fields`` (declared at creation;
default: every field the creator may write, except the bound one, computed fields and files,
which need an account to upload); anything else is refused, and the public form shows only
those. The record is still created by ``public-link:<id>``, so history and audit name the
link.

The token is ``<link id>.<secret>``; only the SHA-256 of the secret is stored (it is 256
random bits, so a fast hash is right; argon2 is for passwords), and it is shown once. A
submission claims the link with one conditional UPDATE in the same unit of work as the new
record, so two simultaneous submissions cannot both succeed, and a refused submission (the
whole unit rolls back) does not use the link up.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps.permissions import FormAccess
from formloom.engines.forms import FormSpec, required_left_out
from formloom.engines.forms.fields import SectionField
from formloom.engines.rules import CreateLinkAction
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.audit.log import audit
from formloom.platform.auth import repository as auth_repository
from formloom.platform.auth.principal import Principal
from formloom.platform.auth.service import principal_for
from formloom.platform.errors import BadRequest, Forbidden, Gone, NotFound, Unprocessable
from formloom.platform.links import tokens
from formloom.platform.models.auth import User
from formloom.platform.models.public_link import PublicLink
from formloom.platform.records.ids import is_id, new_id
from formloom.platform.records.service import RecordService, iso

DEFAULT_HOURS = 7 * 24
MAX_HOURS = 90 * 24
INVALID = "This link is not valid."
USED_UP = "This link has expired, was withdrawn or has already been used."
#: The creator lost the right the link hands on (or the form or bound record is gone). The
#: holder is told no more than that: who made the link and why it stopped are not theirs.
NO_LONGER = "This link no longer accepts submissions."
#: Field types a link's holder cannot fill in: computed values, and files (uploading one
#: needs an account, and a file must be uploaded by the one who writes it); an auto-number (the
#: server gives it), and people and departments (a public form must not list the staff).
NOT_FILLABLE = frozenset(
    {"computed", "file", "image", "signature", "autonumber", "user", "department"}
)


_digest = tokens.digest


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
        "fields": link.fields,
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


def fillable(spec: FormSpec, access: FormAccess, bind_field: str | None) -> list[str]:
    """The fields a link's holder may fill in for a creator with ``access``, in form order:
    those the creator may write, except the bound one and ``NOT_FILLABLE`` types."""
    return [
        field.key
        for field in spec.value_fields()
        if field.field_type not in NOT_FILLABLE
        and field.key not in access.hidden
        and field.key not in access.read_only
        and field.key != bind_field
    ]


class LinkService:
    """Links of one caller, who creates, lists and withdraws them."""

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
        unknown = sorted(set(body) - {"label", "expires_in_hours", "bind", "fields"})
        if unknown:
            raise _body_error(f"/{unknown[0]}", "unknown_property", "is not a known property")
        if self.principal.user_id is None:
            # A submission is bounded by its creator's grant, re-read when the link is used.
            raise Forbidden("Only a user account can publish a form as a link.")
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
        access = self.records.access(installed, form)
        writable = fillable(spec, access, bind_field)
        fields = self._fields(spec, body.get("fields"), writable, bind_field)
        missing = required_left_out(spec, writable if fields is None else fields, bind_field)
        if missing:
            where = "/fields" if fields is not None else "/bind" if bind_field else ""
            raise _body_error(
                where,
                "required",
                f"{missing[0]} is required, so the link must let its holder fill it in"
                + (" (your role may not write it)" if missing[0] not in writable else ""),
            )
        secret = tokens.new_secret()
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
            creator_id=self.principal.user_id,
            fields=fields,
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
            detail={"link": link.id, "expires_at": iso(link.expires_at), "fields": fields},
        )
        await self.session.flush()
        return link, f"{link.id}.{secret}"

    @staticmethod
    def _fields(
        spec: FormSpec, fields: Any, writable: list[str], bind_field: str | None
    ) -> list[str] | None:
        """The declared ``fields``, checked: fields of the form the creator may write."""
        if fields is None:
            return None
        if not isinstance(fields, list) or not fields or len(fields) > 500:
            raise _body_error("/fields", "type", "fields must be a non-empty list of field keys")
        for n, key in enumerate(fields):
            field = spec.field(key) if isinstance(key, str) else None
            if field is None or isinstance(field, SectionField):
                reason = f"{str(key)[:80]!r} is not a field of {spec.key}"
            elif key == bind_field:
                reason = f"{key} is set by the link itself"
            elif field.field_type in NOT_FILLABLE:
                reason = (
                    f"{key} is a {field.field_type} field, which a link's holder cannot fill in"
                )
            elif key not in writable:
                reason = f"{key} is not a field your role may write"
            elif key in fields[:n]:
                reason = f"{key} is listed twice"
            else:
                continue
            raise _body_error(f"/fields/{n}", "field", reason)
        return list(fields)

    async def _binding(self, installed: InstalledApp, spec: FormSpec, bind: Any) -> tuple[str, str]:
        if not isinstance(bind, dict) or set(bind) != {"field", "record"}:
            raise _body_error("/bind", "type", 'bind must be {"field": ..., "record": ...}')
        key, record_id = bind["field"], bind["record"]
        field = spec.field(key) if isinstance(key, str) else None
        if field is None or field.field_type != "relation":
            raise _body_error(
                "/bind/field", "unknown_field", f"{key!r} is not a relation field of {spec.key}"
            )
        target = getattr(field, "target", None)
        assert isinstance(target, str)
        if not is_id(record_id):
            raise _body_error("/bind/record", "invalid_id", "record must be a record id")
        # The creator must be able to read the record the link is bound to (a 404 if not).
        await self.records.require_readable(installed.key, target, record_id)
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


# -- the link's holder ---------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Opened:
    """A usable link, with what its holder may do through it right now."""

    link: PublicLink
    installed: InstalledApp
    spec: FormSpec
    service: RecordService  # acting with the creator's current grant, as the link
    fields: list[str]


#: ``created_by`` of a link a rule (or a flow's action node) made: ``rule:<key>``.
RULE_PREFIX = "rule:"


def rule_of(link: PublicLink) -> str | None:
    """The rule (or flow action node) key of a rule-made link, else ``None``."""
    if link.creator_id is None and link.created_by.startswith(RULE_PREFIX):
        return link.created_by[len(RULE_PREFIX) :]
    return None


def _rule_still_makes(installed: InstalledApp, key: str, form: str) -> bool:
    """Whether the app still has the rule (or flow action node) ``key`` with a
    ``create_link`` action for ``form``: removing the rule withdraws its links."""
    holders: list[Any] = list(installed.spec.rules)
    for flow in installed.spec.flows:
        holders += [node for node in flow.nodes if hasattr(node, "actions")]
    for holder in holders:
        actions = getattr(holder, "then", None) or getattr(holder, "actions", None) or []
        if holder.key == key and any(
            isinstance(action, CreateLinkAction) and action.form == form for action in actions
        ):
            return True
    return False


async def _creator(session: AsyncSession, link: PublicLink) -> Principal:
    """The link's creator as they are now (roles, attributes, admin flag), acting under the
    link's name and for the link's app only; 410 if the account is gone or disabled.

    A rule-made link acts with the rule's grant (as every write of a rule does: the app's
    full access, for the link's app only), bounded by what the rule says (the form, the
    bound record, the fields) and by the rule still being in the app (checked in
    :func:`_open`)."""
    if rule_of(link) is not None:
        return Principal(
            username=f"public-link:{link.id}", is_admin=True, app_scope=link.app, via="public_link"
        )
    user = await session.get(User, link.creator_id) if link.creator_id else None
    if user is None or user.disabled_at is not None:
        raise Gone(NO_LONGER)
    roles = (await auth_repository.roles_of(session, [user.id]))[user.id]
    principal = principal_for(user, roles, via="public_link", app_scope=link.app)
    return replace(principal, username=f"public-link:{link.id}")


async def _open(session: AsyncSession, catalog: AppCatalog, token: str, now: datetime) -> _Opened:
    link = await _by_token(session, token)
    if not _usable(link, now):
        raise Gone(USED_UP)
    principal = await _creator(session, link)
    service = RecordService(session, catalog, principal=principal, now=now)
    try:
        installed, spec = await service.load_form(link.app, link.form)
    except NotFound:
        raise Gone(NO_LONGER) from None
    rule = rule_of(link)
    if rule is not None and not _rule_still_makes(installed, rule, link.form):
        raise Gone(NO_LONGER)
    access = service.access(installed, link.form)
    if not access.allows("create"):
        raise Gone(NO_LONGER)
    if link.bind_field and link.bind_record:
        target = getattr(spec.field(link.bind_field), "target", None)
        try:
            if not isinstance(target, str):
                raise NotFound(NO_LONGER)
            await service.require_readable(link.app, target, link.bind_record)
        except (NotFound, Forbidden):
            # The bound record was deleted, or the creator may no longer read it.
            raise Gone(NO_LONGER) from None
    writable = fillable(spec, access, link.bind_field)
    fields = writable if link.fields is None else [k for k in link.fields if k in writable]
    return _Opened(link, installed, spec, service, fields)


def _public_fields(document: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
    """The form's field definitions the holder fills in, with the sections they sit in."""
    shown: list[dict[str, Any]] = []
    section: dict[str, Any] | None = None
    for field in document.get("fields", []):
        if field.get("type") == "section":
            section = field
        elif field.get("key") in fields:
            if section is not None:
                shown.append(section)
                section = None
            shown.append(field)
    return shown


async def public_form(
    session: AsyncSession, catalog: AppCatalog, token: str, now: datetime
) -> dict[str, Any]:
    """What the link's holder sees: the form, with only the fields they may fill in."""
    opened = await _open(session, catalog, token, now)
    installed = opened.installed
    document = next(f for f in installed.document["forms"] if f.get("key") == opened.spec.key)
    return {
        "app": {"key": installed.key, "label": installed.spec.label},
        "locales": installed.spec.locales,
        "form": {**document, "fields": _public_fields(document, opened.fields)},
        "label": opened.link.label,
        "expires_at": iso(opened.link.expires_at),
    }


async def submit(
    session: AsyncSession, catalog: AppCatalog, token: str, data: Any, now: datetime
) -> dict[str, Any]:
    opened = await _open(session, catalog, token, now)
    link = opened.link
    if isinstance(data, dict):
        errors = [
            {
                "field": key,
                "path": f"/data/{key}",
                "code": "forbidden_field",
                # Every key outside the link's fields gets the same answer, so the holder
                # learns nothing of fields they are not shown (hidden ones included).
                "message": "set by the link"
                if key == link.bind_field
                else "this form does not ask for this field",
            }
            for key in data
            if key not in opened.fields
        ]
        if errors:
            raise Unprocessable(
                "The link sets this field itself."
                if [e["field"] for e in errors] == [link.bind_field]
                else "The submission has fields this form does not ask for.",
                errors=errors,
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
    values = dict(data) if isinstance(data, dict) else data
    if link.bind_field and isinstance(values, dict):
        values[link.bind_field] = link.bind_record
    try:
        record = await opened.service.create(link.app, link.form, values)
    except Forbidden as refused:
        # Outside the creator's rows (their row filter for create): the holder hears that
        # the values are not accepted, not whose grant said so.
        raise Forbidden(
            "This link does not accept a submission with these values; nothing was saved.",
            audit=refused.audit,
        ) from None
    await session.execute(
        update(PublicLink)
        .where(PublicLink.id == link.id)
        .values(last_record_id=record.id)
        .execution_options(synchronize_session=False)
    )
    audit(
        session,
        opened.service.principal,
        "public_link.submitted",
        at=now,
        app=link.app,
        form=link.form,
        record_id=record.id,
        version=record.version,
        detail={"link": link.id, "creator": link.created_by},
    )
    return {"status": "submitted", "submitted_at": iso(now)}
