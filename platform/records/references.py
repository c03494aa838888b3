"""What a record's values point at: related records and uploaded files.

A write may only point at what its writer could reach: a relation value must name a live
record the writer may read (one they may not read gets the answer a missing id gets, so a
write cannot probe for ids), and a file value must be a file uploaded for that very field
by that very writer, described as stored (a file cannot be taken over by copying its id).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FieldError, FormSpec, label_text, relation_values
from formloom.engines.forms.fields import FileField, ImageField, SignatureField, TableField
from formloom.platform.apps.service import InstalledApp
from formloom.platform.errors import shown
from formloom.platform.models.file import StoredFile
from formloom.platform.records import repository
from formloom.platform.records.access import Grants


async def check_relations(
    session: AsyncSession,
    grants: Grants,
    installed: InstalledApp,
    spec: FormSpec,
    data: dict[str, Any],
    only: set[str] | None,
) -> list[FieldError]:
    """Relation values must name live records the writer could read: the read action
    and its row filter on the target form (a platform admin and the platform itself
    read everything). A record they may not read gets the very answer a missing id
    gets, so a write cannot probe for ids either. ``only`` (an update's changed
    top-level keys) limits the check to what the write changes: a pointer already
    stored, which this writer may not be able to read, is not theirs to answer for."""
    errors = []
    by_target: dict[str, list[tuple[str, str]]] = {}
    for key, target, value in relation_values(spec, data):
        # keys inside table rows come as "items/0/product"; `only` holds top-level keys
        if only is None or key.split("/", 1)[0] in only:
            by_target.setdefault(target, []).append((key, value))
    for target, refs in by_target.items():
        access = grants.access(installed, target)
        found: set[str] = set()
        if access.allows("read"):
            where = grants.row_condition(access, "read", installed.form(target))
            found = await repository.existing_ids(
                session, installed.key, target, [value for _, value in refs], where=where
            )
        target_form = installed.forms.get(target)
        noun = label_text(target_form.label) if target_form else target
        for key, value in refs:
            if value not in found:
                errors.append(
                    FieldError(
                        field=key.split("/", 1)[0],
                        path=f"/data/{key}",
                        code="relation",
                        message=f"There is no {noun} record with id '{value}'.",
                    )
                )
    return errors


async def check_files(
    session: AsyncSession,
    installed: InstalledApp,
    spec: FormSpec,
    data: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    uploader: str | None,
) -> list[FieldError]:
    """Files a write newly refers to must have been uploaded for this very field, by
    ``uploader`` (``None``: by anyone — rules and the platform), and be described as
    stored: a file cannot be taken over by copying its id into another record."""
    before = {ref["id"] for _, _, ref in file_refs(spec, old or {})}
    wanted = [(key, path, ref) for key, path, ref in file_refs(spec, data)
              if ref["id"] not in before]  # fmt: skip
    if not wanted:
        return []
    rows = {
        row.id: row
        for row in (
            await session.execute(
                select(StoredFile).where(StoredFile.id.in_({r["id"] for _, _, r in wanted}))
            )
        ).scalars()
    }
    errors = []
    for key, path, ref in wanted:
        row = rows.get(ref["id"])
        ok = (
            row is not None
            and (row.app, row.form, row.field) == (installed.key, spec.key, path)
            and (uploader is None or row.created_by == uploader)
            and (ref.get("name"), ref.get("content_type"), ref.get("size"))
            == (row.name, row.content_type, row.size)
        )
        if not ok:
            errors.append(
                FieldError(
                    field=key.split("/", 1)[0],
                    path=f"/data/{key}",
                    code="file",
                    message=f"There is no file '{shown(str(ref['id']))}' uploaded for "
                    f"this field by you; upload it with POST /api/files/{installed.key}/"
                    f"{spec.key}/{path}.",
                )
            )
    return errors


def file_refs(spec: FormSpec, data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(JSON path under data, field path "key" or "table.column", reference)`` of every
    file a record's file and image fields (and table columns) hold."""

    def refs(value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        return [
            item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    for field in spec.value_fields():
        value = data.get(field.key)
        if value is None:
            continue
        if isinstance(field, FileField | ImageField | SignatureField):
            for n, ref in enumerate(refs(value)):
                where = f"{field.key}/{n}" if isinstance(value, list) else field.key
                yield where, field.key, ref
        elif isinstance(field, TableField) and isinstance(value, list):
            for row_number, row in enumerate(value):
                if not isinstance(row, dict):
                    continue
                for column in field.fields:
                    if isinstance(column, FileField | ImageField | SignatureField) and row.get(
                        column.key
                    ):
                        cell = row[column.key]
                        for n, ref in enumerate(refs(cell)):
                            where = f"{field.key}/{row_number}/{column.key}"
                            if isinstance(cell, list):
                                where += f"/{n}"
                            yield where, f"{field.key}.{column.key}", ref
