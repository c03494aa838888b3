"""All SQL about records, their history and unique claims."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models import Record, RecordHistory, RecordUnique


def literal_key(key: str) -> ColumnElement[str]:
    """An app or form key written into the SQL text (keys are validated identifiers), so a
    partial expression index ``WHERE app = 'x' AND form = 'y'`` is usable by the planner even
    for prepared, generic plans."""
    return literal_column(f"'{key}'")


def live(app: str, form: str) -> list[ColumnElement[bool]]:
    return [
        Record.app == literal_key(app),
        Record.form == literal_key(form),
        Record.deleted_at.is_(None),
    ]


async def get(
    session: AsyncSession, app: str, form: str, record_id: str, *, lock: bool = False
) -> Record | None:
    query = select(Record).where(Record.id == record_id, *live(app, form))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def existing_ids(session: AsyncSession, app: str, form: str, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    query = select(Record.id).where(Record.id.in_(wanted), *live(app, form))
    return set((await session.execute(query)).scalars())


async def claimed(
    session: AsyncSession, app: str, form: str, claims: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """For each (field, value) already claimed, the field -> the record that holds it."""
    if not claims:
        return {}
    found: dict[str, str] = {}
    for field, value in claims:
        query = select(RecordUnique.record_id).where(
            RecordUnique.app == app,
            RecordUnique.form == form,
            RecordUnique.field == field,
            RecordUnique.value == value,
        )
        holder = (await session.execute(query)).scalar_one_or_none()
        if holder is not None:
            found[field] = holder
    return found


async def release_claims(
    session: AsyncSession, record_id: str, fields: Iterable[str] | None = None
) -> None:
    query = delete(RecordUnique).where(RecordUnique.record_id == record_id)
    if fields is not None:
        query = query.where(RecordUnique.field.in_(list(fields)))
    await session.execute(query)


def add_claims(
    session: AsyncSession, app: str, form: str, record_id: str, claims: Sequence[tuple[str, str]]
) -> None:
    for field, value in claims:
        session.add(
            RecordUnique(app=app, form=form, field=field, value=value, record_id=record_id)
        )


async def bump(session: AsyncSession, record: Record, expected_version: int, **values: Any) -> bool:
    """Write a new version only if nobody wrote one since ``expected_version`` was read."""
    result = await session.execute(
        update(Record)
        .where(Record.id == record.id, Record.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def history_of(record_id: str) -> Select[tuple[RecordHistory]]:
    return (
        select(RecordHistory)
        .where(RecordHistory.record_id == record_id)
        .order_by(RecordHistory.version)
    )


async def count(session: AsyncSession, conditions: Sequence[ColumnElement[bool]]) -> int:
    query = select(func.count()).select_from(Record).where(*conditions)
    return int((await session.execute(query)).scalar_one())
