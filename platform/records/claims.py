"""Unique fields: claims in ``record_unique``, one per (app, form, field, value).

A write checks its claims before writing (a ``unique`` error per field already claimed by
another record) and then inserts them; two concurrent writers of one value cannot both
commit, because the table's primary key refuses the second claim. That refusal is answered
exactly like the check's own finding, so a client sees one status for a duplicate whatever
the timing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FieldError, FormSpec, RecordInvalid, label_text, unique_fields
from formloom.platform.records import repository

#: (field key, claimed value) pairs.
Claims = list[tuple[str, str]]


def claim_value(value: Any) -> str:
    """The value a unique claim is made on: text compares trimmed and case-insensitively."""
    text = (
        value.strip().casefold()
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    if len(text) <= 200:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def claims_of(spec: FormSpec, data: dict[str, Any], only: set[str] | None) -> Claims:
    """The claims ``data`` makes (on the fields in ``only``, when given)."""
    return [
        (key, claim_value(data[key]))
        for key in unique_fields(spec)
        if data.get(key) not in (None, "", []) and (only is None or key in only)
    ]


def unique_errors(spec: FormSpec, keys: Sequence[str]) -> list[FieldError]:
    labels = {f.key: label_text(getattr(f, "label", None) or f.key) for f in spec.fields}
    return [
        FieldError(
            field=key,
            path=f"/data/{key}",
            code="unique",
            message=f"{labels.get(key, key)} must be unique; another record already "
            "has this value.",
        )
        for key in keys
    ]


async def check_unique(
    session: AsyncSession, app: str, spec: FormSpec, claims: Claims, record_id: str | None
) -> list[FieldError]:
    """A ``unique`` error per claim another record than ``record_id`` holds."""
    holders = await repository.claimed(session, app, spec.key, claims)
    return unique_errors(spec, [key for key, holder in holders.items() if holder != record_id])


def unique_race(spec: FormSpec, claims: Claims | None = None) -> RecordInvalid:
    """A unique value claimed by a concurrent write that committed after this one's
    check: the database's unique index refused the claim. Answered exactly like the
    check's own finding (422, a ``unique`` error per field) so that a client sees one
    status for a duplicate whatever the timing; which of the claimed fields clashed is
    not known here, so each field this write claimed is named."""
    keys = [key for key, _ in claims] if claims else list(unique_fields(spec))
    return RecordInvalid(unique_errors(spec, keys))
