"""Auto-numbers: the server gives each new record the next number of its form's
``autonumber`` fields (``engines.forms.fields.AutonumberField``).

Invariants:

* A number comes from one upsert on ``record_counters`` (``INSERT ... ON CONFLICT DO UPDATE
  SET value = value + n RETURNING value``) in the creating unit of work. The counter row stays
  locked until that unit ends, so concurrent creates of a form wait for each other's commit
  and each gets the next number (PostgreSQL row lock; SQLite has one writer at a time).
* A unit that rolls back gives its numbers back with it (the counter rolls back too), so the
  next create takes the same number — no record ever held it. A deleted record's number is
  never given again: counters only go up.
* The date parts and the period of a reset are the creation instant on the clinic's clock
  (the service's ``now`` is in the clinic's zone, ``platform.clock``).
* Only the server writes the numbers: a client's value is refused by the form engine
  (``read_only``), and a trusted writer's (rules, the demo loader) is replaced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FormSpec
from formloom.engines.forms.fields import AutonumberField
from formloom.platform.models import RecordCounter

__all__ = ["autonumber_fields", "number_record", "number_records", "take"]


def autonumber_fields(spec: FormSpec) -> list[AutonumberField]:
    """The form's auto-number fields (top level only: a table column cannot be one)."""
    return [field for field in spec.fields if isinstance(field, AutonumberField)]


async def take(
    session: AsyncSession, app: str, form: str, field: str, period: str, count: int = 1
) -> int:
    """Reserve ``count`` numbers of one counter; the last of them (the first is
    ``last - count + 1``)."""
    table: Table = RecordCounter.__table__  # type: ignore[assignment]
    bind = session.bind
    assert bind is not None
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(app=app, form=form, field=field, period=period, value=count)
        .on_conflict_do_update(
            index_elements=["app", "form", "field", "period"],
            set_={"value": table.c.value + count},
        )
        .returning(table.c.value)
    )
    return int((await session.execute(statement)).scalar_one())


async def number_records(
    session: AsyncSession,
    app: str,
    spec: FormSpec,
    records: list[dict[str, Any]],
    at: datetime,
) -> None:
    """Give each of ``records`` (data of new records, in creation order) its numbers, in
    place: consecutive numbers per field, reserved with one statement per field."""
    if not records:
        return
    for field in autonumber_fields(spec):
        period = field.period(at)
        last = await take(session, app, spec.key, field.key, period, len(records))
        first = last - len(records) + 1
        for offset, data in enumerate(records):
            data[field.key] = field.render(first + offset, at)


async def number_record(
    session: AsyncSession,
    app: str,
    spec: FormSpec,
    data: dict[str, Any],
    at: datetime,
    given: dict[str, str],
) -> None:
    """Give one new record (``data``, in place) its numbers. ``given`` holds the numbers
    already taken for it: a create retried against a newer definition keeps them."""
    for field in autonumber_fields(spec):
        if field.key not in given:
            number = await take(session, app, spec.key, field.key, field.period(at))
            given[field.key] = field.render(number, at)
        data[field.key] = given[field.key]
