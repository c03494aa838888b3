"""Each record's time zone, as the app's ``zone`` declaration says (docs/time-zones.md).

The engine (:mod:`formloom.engines.apps.zones`) reads the declaration; this module loads
what it points at. A record of a form with the zone relation (``branch``) is in the zone
its related record names (the branch's ``timezone``); any other record, and one whose
relation is empty, dangling or names no valid zone, is in the deployment's zone (``home``:
``settings.timezone``, which the platform clock's ``now`` carries).

Invariants
    * One query per batch of records (per target form), never per record: the date timers
      of an import, a schedule rule's matching records, a worker's timer.
    * What was loaded is kept for the unit of work (``session.info``), so a write's rules,
      its date timers and its texts ask the database once; a write to a record holding a
      zone (a branch) drops what was kept of it.
    * Only valid IANA names come out (:func:`~formloom.engines.apps.zones.valid_zone`), so
      the engines can rely on the zone they are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps.zones import ZoneSource, valid_zone, zone_source, zone_value_problem
from formloom.engines.forms import FieldError, RecordInvalid, label_text
from formloom.engines.forms.errors import pointer
from formloom.engines.rules import RuleIndex
from formloom.platform.models import Record

__all__ = [
    "check_zone_values",
    "forget",
    "home_zone",
    "record_zone",
    "record_zones",
    "source_of",
]

#: Per installed rule set (one per installed app version): its resolved declaration.
_SOURCES: WeakKeyDictionary[RuleIndex, ZoneSource | None] = WeakKeyDictionary()
#: ``session.info`` key: (app, form, record id) -> the zone that record names, or None.
_KNOWN = "formloom.record_zones"


def home_zone(now: datetime) -> str:
    """The deployment's zone: the platform clock gives ``now`` in it."""
    zone = now.tzinfo
    return zone.key if isinstance(zone, ZoneInfo) else "UTC"


def source_of(installed: Any) -> ZoneSource | None:
    """The app's zone declaration resolved against its forms (worked out once per
    installed version); ``None`` when the app declares none."""
    index: RuleIndex = installed.rules
    if index not in _SOURCES:
        spec = installed.spec
        _SOURCES[index] = zone_source(getattr(spec, "zone", None), list(spec.forms))
    return _SOURCES[index]


async def record_zones(
    session: AsyncSession,
    installed: Any,
    form: str,
    records: Sequence[Mapping[str, Any] | None],
    home: str,
) -> list[str]:
    """The zone of each record (its data) of ``form``, in order: what its zone relation's
    record names, else ``home``. One query for the records not yet known in this unit."""
    source = source_of(installed)
    target = source.target_of(form) if source is not None else None
    if source is None or target is None:
        return [home] * len(records)
    app = installed.key
    links = [
        value if isinstance(value, str) and value else None
        for value in (data.get(source.relation) if data else None for data in records)
    ]
    known: dict[tuple[str, str, str], str | None] = session.info.setdefault(_KNOWN, {})
    missing = sorted({link for link in links if link and (app, target, link) not in known})
    if missing:
        found = dict.fromkeys(missing, None)
        for start in range(0, len(missing), 500):
            rows = await session.execute(
                select(Record.id, Record.data).where(
                    Record.app == app,
                    Record.form == target,
                    Record.id.in_(missing[start : start + 500]),
                    Record.deleted_at.is_(None),
                )
            )
            for record_id, data in rows.all():
                found[record_id] = valid_zone((data or {}).get(source.zone_field))
        known.update(((app, target, link), zone) for link, zone in found.items())
    return [(known.get((app, target, link)) if link else None) or home for link in links]


async def record_zone(
    session: AsyncSession,
    installed: Any,
    form: str,
    data: Mapping[str, Any] | None,
    home: str,
) -> str:
    """The zone of one record (:func:`record_zones`)."""
    return (await record_zones(session, installed, form, [data], home))[0]


def forget(session: AsyncSession, installed: Any, form: str, record_id: str) -> None:
    """Drop what this unit of work knew of the zone the record names (it is being written)."""
    known: dict[tuple[str, str, str], str | None] = session.info.get(_KNOWN, {})
    known.pop((installed.key, form, record_id), None)


def check_zone_values(
    session: AsyncSession,
    installed: Any,
    form: str,
    record_id: str,
    data: Mapping[str, Any],
    locale: str,
) -> None:
    """Refuse to store a record of a zone form (the branch) whose zone field holds no IANA
    zone name (422 at the field), and forget what this unit knew of the record's zone."""
    source = source_of(installed)
    if source is None or form not in source.zone_forms():
        return
    forget(session, installed, form, record_id)
    problem = zone_value_problem(data.get(source.zone_field))
    if problem is None:
        return
    spec = installed.spec.form(form)
    field = spec.field(source.zone_field) if spec is not None else None
    label = label_text(field.label, locale) if field is not None and field.label else None
    name = label or source.zone_field
    raise RecordInvalid(
        [
            FieldError(
                field=source.zone_field,
                path=pointer(source.zone_field),
                code="invalid_zone",
                message=f"{name}: {problem}",
            )
        ]
    )
