"""A record with what happened around it: its related records, tasks, flows and messages.

``GET /api/records/{app}/{form}/{id}/related`` answers, for one record the caller may read,
every readable record of the app that points at it through a relation field (one hop:
visit -> patient) or at one of those (two hops: survey -> visit -> patient), grouped by
relation path, newest first, each group capped with its full count; the record's own tasks,
flow instances and outbound messages; and one timeline merging all of them.

Invariants:

* Every related record comes from the records the caller may list: the form's ``read``
  grant and its row filter (``RecordService._readable``, the list endpoint's conditions) for
  the related form *and* for the form in the middle of a two-hop path, so a row rule that
  limits visits limits the surveys reached through them. Values are those of
  ``record_out`` without the caller's hidden fields, and every summary and title is made
  from those values only.
* A path is left out (counted in ``left_out``, never named) when the caller may not read a
  form on it or when a relation field on it is hidden from them: the link itself would tell
  what the field holds.
* One query per relation path (and a COUNT only when a group is full), by the relation
  field's expression (``field_value``, the expression its index is built on); a two-hop
  path reads its middle records as a subquery, never one query per record.
* Tasks are those the inbox shows the caller (admin, assignee, whoever completed it, or a
  candidate by user or role); messages are outbox notifications planned for the record,
  shown as channel, rule and state without their text (templates render record values,
  including fields hidden from the reader, only at delivery).
* Times are UTC instants (``...Z``) or dates; ``zone`` names the clinic's zone the UI shows
  them in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps.permissions import FormAccess
from formloom.engines.forms import FormSpec, label_text, localtime, title_of
from formloom.engines.forms.fields import (
    BaseField,
    MultiselectField,
    RelationField,
    SelectField,
    TableField,
)
from formloom.engines.logic.sql import field_value
from formloom.platform.apps.service import InstalledApp
from formloom.platform.models import Record
from formloom.platform.models.automation import OutboxMessage, Task
from formloom.platform.models.flow import FlowInstance, TaskCandidate
from formloom.platform.records.access import filter_target, iso, record_out, source
from formloom.platform.records.service import RecordService

#: Records per group unless asked otherwise, and the most a caller may ask for.
GROUP_SIZE = 20
MAX_GROUP_SIZE = 100
#: A two-hop group's list link filters by the middle records' ids up to this many.
MAX_LINK_IDS = 200
#: Tasks, flow instances and messages of the record, newest first, at most this many each.
OWN_ROWS = 50
#: Values a timeline summary shows.
SUMMARY_VALUES = 3
_DATE_TYPES = ("date", "datetime")
_SKIPPED_IN_SUMMARY = (
    "relation", "table", "file", "image", "textarea", "section", "signature", "richtext",
)  # fmt: skip


@dataclass(frozen=True)
class Step:
    """Records of ``spec`` whose ``field`` points at the previous step's records."""

    spec: FormSpec
    field: RelationField


def paths_to(installed: InstalledApp, form: str) -> list[tuple[Step, ...]]:
    """Every relation path ending at ``form``: one hop (records pointing at it), then two
    (records pointing at those), in app order; a second hop back to ``form`` itself is
    left out (it only finds the record's own kind again)."""
    forms = installed.spec.forms

    def pointing_at(target: str) -> list[Step]:
        return [
            Step(spec, field)
            for spec in forms
            for field in spec.fields
            if isinstance(field, RelationField) and field.target == target
        ]

    paths: list[tuple[Step, ...]] = []
    for first in pointing_at(form):
        paths.append((first,))
        if first.spec.key == form:
            continue
        for second in pointing_at(first.spec.key):
            if second.spec.key != form:
                paths.append((first, second))
    return paths


def main_date_field(spec: FormSpec, hidden: frozenset[str]) -> BaseField | None:
    """The field telling when a record happened: its first date or datetime field the
    caller may see (``None``: the record's ``created_at``)."""
    return next(
        (
            field
            for field in spec.value_fields()
            if field.field_type in _DATE_TYPES and field.key not in hidden
        ),
        None,
    )


def _value_text(field: BaseField, value: Any, locale: str) -> str:
    if isinstance(field, SelectField | MultiselectField):
        labels = {option.value: label_text(option.label, locale) for option in field.options}
        items = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(item) or str(item) for item in items)
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def summary_of(
    spec: FormSpec, data: dict[str, Any], locale: str, skip: set[str], zone: tzinfo
) -> str:
    """A few of the record's visible values, "Label: value · ..." (``data`` is already
    without the caller's hidden fields)."""
    parts = []
    for field in spec.value_fields():
        if field.key in skip or field.field_type in _SKIPPED_IN_SUMMARY:
            continue
        value = data.get(field.key)
        if value in (None, "", []) or isinstance(field, TableField):
            continue
        if field.field_type == "datetime" and isinstance(value, str):
            text = local_text(value, zone)
        else:
            text = _value_text(field, value, locale)
        label = label_text(getattr(field, "label", None) or field.key, locale)
        parts.append(f"{label}: {text[:80]}")
        if len(parts) == SUMMARY_VALUES:
            break
    return " · ".join(parts)


def local_text(value: str, zone: tzinfo) -> str:
    """A stored UTC instant as ``2026-12-04 10:00`` in ``zone`` (a date as it is)."""
    return localtime.local_text(value, zone) or value


def _instant(value: Any, zone: tzinfo) -> datetime | None:
    """When a date or datetime value happened (a date: its midnight in the clinic's zone)."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _title(spec: FormSpec, data: dict[str, Any], locale: str, record_id: str, zone: tzinfo) -> str:
    """The record's title field's value (a datetime on the clinic's clock), or its id's end."""
    title = title_of(spec, data, locale, zone)
    return title if title is not None else record_id[-8:]


class RelatedReader:
    """One caller's view of one record's surroundings (see the module docstring)."""

    def __init__(
        self, service: RecordService, *, locale: str, zone: str, group_size: int = GROUP_SIZE
    ) -> None:
        self.service = service
        self.session: AsyncSession = service.session
        self.locale = locale
        self.zone = localtime.zone_of(zone)
        self.zone_name = localtime.zone_name(self.zone)
        self.group_size = group_size

    def _linked(
        self,
        installed: InstalledApp,
        step: Step,
        access: FormAccess,
        to: Any,
        projection: sa.Table | None,
    ) -> list[ColumnElement[bool]]:
        """The readable records of the step's form whose relation field is ``to`` (an id,
        or a subquery of ids), read through the form's typed ``projection`` when it has one
        (whose index on the relation field serves the lookup)."""
        conditions = self.service._readable(
            installed.key, step.spec.key, access, step.spec, projection
        )
        target = filter_target(step.spec, self.service.dialect, projection=projection)
        value = field_value(target, step.field.key)
        linked = value.in_(to) if isinstance(to, Select) else value == to
        conditions.append(linked)
        return conditions

    async def read(self, app: str, form: str, record_id: str) -> dict[str, Any]:
        """The record (a 403 or 404 as its read) with its surroundings."""
        installed, spec = await self.service.load_form(app, form)
        record = await self.service.get(app, form, record_id)
        access = self.service.allowed(installed, form, "read")
        return await self.around(installed, spec, record_out(record, None, access.hidden))

    async def around(
        self, installed: InstalledApp, spec: FormSpec, view: dict[str, Any]
    ) -> dict[str, Any]:
        """The surroundings of a record the caller has just read (``view``: as they see
        it, from ``record_out``)."""
        service = self.service
        app, form, record_id = installed.key, spec.key, str(view["id"])
        access = service.allowed(installed, form, "read")
        groups: list[dict[str, Any]] = []
        left_out = 0
        for path in paths_to(installed, form):
            accesses = [service.access(installed, step.spec.key) for step in path]
            if any(
                not step_access.allows("read") or step.field.key in step_access.hidden
                for step, step_access in zip(path, accesses, strict=True)
            ):
                left_out += 1
                continue
            groups.append(await self._group(installed, record_id, path, accesses))
        tasks = await self._tasks(app, form, record_id)
        flows = await self._flows(installed, form, record_id)
        messages = await self._messages(installed, form, record_id)
        date_field = main_date_field(spec, access.hidden)
        at = view["data"].get(date_field.key) if date_field else None
        return {
            "record": view,
            "title": _title(spec, view["data"], self.locale, record_id, self.zone),
            "form_label": label_text(spec.label, self.locale),
            "at": at if isinstance(at, str) else view["created_at"],
            "zone": self.zone_name,
            "groups": groups,
            "tasks": tasks,
            "flows": flows,
            "messages": messages,
            "timeline": self._timeline(app, groups, tasks, flows, messages),
            "left_out": left_out,
        }

    async def _group(
        self,
        installed: InstalledApp,
        record_id: str,
        path: tuple[Step, ...],
        accesses: list[FormAccess],
    ) -> dict[str, Any]:
        app = installed.key
        tables = [await self.service._projection(app, step.spec.key) for step in path]
        first = self._linked(installed, path[0], accesses[0], record_id, tables[0])
        middle: Select[Any] | None = None
        if len(path) == 1:
            conditions = first
        else:
            # correlate(None): the subquery names its tables in its own FROM; SQL resolves
            # their columns to the nearest FROM, so it is not tied to the outer row
            if tables[0] is None:
                middle = select(Record.id).where(*first).correlate(None)
            else:
                ids = tables[0].c._id
                middle = select(ids).select_from(source(tables[0], first)).where(*first)
                middle = middle.correlate(None)
            conditions = self._linked(installed, path[1], accesses[1], middle, tables[1])
        last, access = path[-1], accesses[-1]
        projection = tables[-1]
        spec = last.spec
        # a record of the record's own kind (a referral) happened when it was made: its
        # dates (a birth date) say nothing of when it came to point here
        same_kind = spec.key == path[0].field.target
        date_field = None if same_kind else main_date_field(spec, access.hidden)
        order: list[Any] = []
        target = filter_target(spec, self.service.dialect, projection=projection)
        if date_field is not None:
            expression = field_value(target, date_field.key)
            order.append(expression.desc().nulls_last())
        order += [target.columns["created_at"].desc(), target.columns["id"].desc()]
        rows = (
            await self.session.scalars(
                select(Record)
                .select_from(source(projection))
                .where(*conditions)
                .order_by(*order)
                .limit(self.group_size + 1)
            )
        ).all()
        full = len(rows) > self.group_size
        rows = rows[: self.group_size]
        count = len(rows)
        if full:
            count = int(
                (
                    await self.session.execute(
                        select(func.count())
                        .select_from(source(projection, conditions))
                        .where(*conditions)
                    )
                ).scalar_one()
            )
        items = []
        skip = {step.field.key for step in path[-1:]}
        if spec.title_field:
            skip.add(spec.title_field)
        if date_field is not None:
            skip.add(date_field.key)
        for row in rows:
            out = record_out(row, None, access.hidden)
            value = out["data"].get(date_field.key) if date_field else None
            items.append(
                {
                    "record": out,
                    "title": _title(spec, out["data"], self.locale, row.id, self.zone),
                    "at": value if isinstance(value, str) else out["created_at"],
                    "summary": summary_of(spec, out["data"], self.locale, skip, self.zone),
                }
            )
        self.service._read_event(installed, spec, [row.id for row in rows])
        list_filter = await self._list_filter(path, record_id, middle)
        return {
            "form": spec.key,
            "form_label": label_text(spec.label, self.locale),
            "path": [
                {
                    "form": step.spec.key,
                    "field": step.field.key,
                    "label": label_text(step.field.label or step.field.key, self.locale),
                }
                for step in path
            ],
            "count": count,
            "items": items,
            "list_filter": list_filter,
            "list_href": (
                f"/api/records/{app}/{spec.key}?"
                + urlencode({"filter": json.dumps(list_filter, separators=(",", ":"))})
                if list_filter is not None
                else None
            ),
        }

    async def _list_filter(
        self, path: tuple[Step, ...], record_id: str, middle: Select[Any] | None
    ) -> Any:
        """The list filter giving the whole group (as far as a filter can say it)."""
        last = path[-1].field.key
        if middle is None:
            return {"==": [{"var": last}, record_id]}
        ids = list((await self.session.scalars(middle.limit(MAX_LINK_IDS + 1))).all())
        if len(ids) > MAX_LINK_IDS:
            return None
        return {"in": [{"var": last}, sorted(ids)]}

    async def _tasks(self, app: str, form: str, record_id: str) -> list[dict[str, Any]]:
        who = self.service.principal
        statement = select(Task).where(
            Task.record_id == record_id, Task.app == app, Task.form == form
        )
        if not (who.is_admin and who.app_scope in (None, app)):
            if who.app_scope not in (None, app):
                return []
            options: list[ColumnElement[bool]] = [
                Task.assignee == who.username,
                Task.completed_by == who.username,
                Task.id.in_(
                    select(TaskCandidate.task_id).where(
                        TaskCandidate.kind == "user", TaskCandidate.value == who.username
                    )
                ),
            ]
            roles = sorted(who.roles_in(app))
            if roles:
                options.append(
                    Task.id.in_(
                        select(TaskCandidate.task_id).where(
                            TaskCandidate.kind == "role",
                            TaskCandidate.app == app,
                            TaskCandidate.value.in_(roles),
                        )
                    )
                )
            statement = statement.where(or_(*options))
        rows = (
            await self.session.scalars(
                statement.order_by(Task.created_at.desc(), Task.id.desc()).limit(OWN_ROWS)
            )
        ).all()
        return [
            {
                "id": task.id,
                "title": task.title,
                "status": task.status,
                "kind": "flow" if task.instance_id else "rule",
                "assignee": task.assignee,
                "due_at": iso(task.due_at) if task.due_at else None,
                "created_at": iso(task.created_at),
                "completed_at": iso(task.completed_at) if task.completed_at else None,
            }
            for task in rows
        ]

    async def _flows(
        self, installed: InstalledApp, form: str, record_id: str
    ) -> list[dict[str, Any]]:
        """Instances on the record: the caller may read the record, which is what lets a
        reader list them (``GET /api/flow-instances?record_id=``)."""
        rows = (
            await self.session.scalars(
                select(FlowInstance)
                .where(
                    FlowInstance.record_id == record_id,
                    FlowInstance.app == installed.key,
                    FlowInstance.form == form,
                )
                .order_by(FlowInstance.started_at.desc(), FlowInstance.id.desc())
                .limit(OWN_ROWS)
            )
        ).all()
        labels = {flow.key: label_text(flow.label or flow.key, self.locale)
                  for flow in installed.spec.flows}  # fmt: skip
        return [
            {
                "id": row.id,
                "flow": row.flow,
                "label": labels.get(row.flow, row.flow),
                "status": row.status,
                "started_at": iso(row.started_at),
                "ended_at": iso(row.ended_at) if row.ended_at else None,
            }
            for row in rows
        ]

    async def _messages(
        self, installed: InstalledApp, form: str, record_id: str
    ) -> list[dict[str, Any]]:
        payload = OutboxMessage.payload
        rows = (
            await self.session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.app == installed.key,
                    OutboxMessage.kind == "notify",
                    payload["record_id"].as_string() == record_id,
                    payload["form"].as_string() == form,
                )
                .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                .limit(OWN_ROWS)
            )
        ).all()
        labels = {rule.key: label_text(rule.label or rule.key, self.locale)
                  for rule in installed.spec.rules}  # fmt: skip
        return [
            {
                "id": row.id,
                "rule": row.rule,
                "rule_label": labels.get(row.rule, row.rule),
                "channel": row.channel,
                "status": row.status,
                "created_at": iso(row.created_at),
                "delivered_at": iso(row.delivered_at) if row.delivered_at else None,
            }
            for row in rows
        ]

    def _timeline(
        self,
        app: str,
        groups: list[dict[str, Any]],
        tasks: list[dict[str, Any]],
        flows: list[dict[str, Any]],
        messages: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        for group in groups:
            for item in group["items"]:
                record = item["record"]
                if record["id"] in seen:
                    continue
                seen.add(record["id"])
                entries.append(
                    {
                        "kind": "record",
                        "form": record["form"],
                        "form_label": group["form_label"],
                        "id": record["id"],
                        "title": item["title"],
                        "at": item["at"],
                        "summary": item["summary"],
                        "href": f"/apps/{app}/forms/{record['form']}/{record['id']}",
                    }
                )
        for task in tasks:
            entries.append(
                {
                    "kind": "task",
                    "form": None,
                    "form_label": None,
                    "id": task["id"],
                    "title": task["title"],
                    "at": task["created_at"],
                    "summary": task["status"],
                    "href": None,
                }
            )
        for flow in flows:
            entries.append(
                {
                    "kind": "flow",
                    "form": None,
                    "form_label": None,
                    "id": flow["id"],
                    "title": flow["label"],
                    "at": flow["started_at"],
                    "summary": flow["status"],
                    "href": None,
                }
            )
        for message in messages:
            entries.append(
                {
                    "kind": "message",
                    "form": None,
                    "form_label": None,
                    "id": message["id"],
                    "title": message["rule_label"],
                    "at": message["created_at"],
                    "summary": f"{message['channel'] or ''} · {message['status']}",
                    "href": None,
                }
            )
        oldest = datetime.min.replace(tzinfo=UTC)

        def when(entry: dict[str, Any]) -> tuple[datetime, str]:
            return (_instant(entry["at"], self.zone) or oldest, entry["id"])

        entries.sort(key=when, reverse=True)
        return entries
