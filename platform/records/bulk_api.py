"""``POST /api/records/{app}/{form}/bulk``: many writes of one form in one call
(platform/records/bulk.py; the contract is in docs/import.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from formloom.engines.forms.localtime import zone_of
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import BadRequest, Problem, audit_refusal
from formloom.platform.i18n import request_locale
from formloom.platform.records import importing
from formloom.platform.records.bulk import (
    MAX_BODY_BYTES,
    MAX_ITEMS,
    BulkOut,
    BulkRequest,
    BulkWriter,
    refused,
    report,
    too_many,
)
from formloom.platform.records.service import service_for

router = APIRouter(prefix="/api/records", tags=["records"])


@router.post(
    "/{app}/{form}/bulk",
    response_model=BulkOut,
    responses={422: {"description": "An item is not valid (atomic): every one is listed."}},
)
async def bulk_write(
    app: str,
    form: str,
    body: BulkRequest,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    atomic: Annotated[
        bool,
        Query(description="All or nothing (default); false: write what can be, a result each."),
    ] = True,
) -> Response:
    """Up to 10,000 creates, updates, upserts and deletes of one form, each checked and
    audited as its single write is, rules included."""
    if len(body.items) > MAX_ITEMS:
        raise too_many(len(body.items))
    refusals: list[dict[str, Any]] = []
    try:
        async with p.db.transaction() as session:
            writer = BulkWriter(service_for(p, session, who), app, form, atomic=atomic)
            outcomes = await writer.run(body.items)
            refusals = writer.refusals
            if atomic and any(o.status >= 400 for o in outcomes):
                raise refused(outcomes)
    except Problem:
        for event in refusals:
            await audit_refusal(request, event)
        raise
    for event in refusals:
        await audit_refusal(request, event)
    return JSONResponse(report(outcomes, atomic=atomic))


class ImportColumn(BaseModel):
    name: str
    field: str | None = Field(description="The field the column fills; null: not imported.")


class ImportField(BaseModel):
    key: str
    type: str
    label: str
    required: bool


class ImportRowError(BaseModel):
    row: int = Field(description="The row's number in the file (the header is row 1).")
    column: str | None = None
    field: str | None = None
    code: str
    message: str


class ImportOut(BaseModel):
    file: str
    rows: int
    columns: list[ImportColumn]
    fields: list[ImportField] = Field(description="The fields a column may be mapped to.")
    upsert: str | None
    dry_run: bool
    skip_bad_rows: bool
    bad_rows: int
    to_create: int
    to_update: int
    created: int
    updated: int
    errors: list[ImportRowError]
    errors_truncated: bool


def _mapping(raw: str | None) -> dict[str, Any] | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest(
            "`mapping` must be a JSON object: column name -> field key or null.",
            errors=[
                {
                    "in": "body",
                    "path": "/mapping",
                    "code": "type",
                    "message": "must be a JSON object",
                }
            ],  # fmt: skip
        )
    return value


@router.post("/{app}/{form}/import", response_model=ImportOut)
async def import_spreadsheet(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    file: Annotated[
        UploadFile, File(description="A CSV or XLSX file; its first row names the columns.")
    ],
    mapping: Annotated[
        str | None,
        Form(
            description="JSON: column name -> field key or null. Absent: guessed from the "
            "columns' names (field keys and labels in English or Chinese)."
        ),
    ] = None,
    dry_run: Annotated[bool, Query(description="Only check and count (default).")] = True,
    upsert: Annotated[
        str | None, Query(description="A unique field: rows holding a stored value update it.")
    ] = None,
    skip_bad_rows: Annotated[
        bool, Query(description="Import the good rows (false: all or nothing).")
    ] = False,
) -> dict[str, Any]:
    """Import the rows of a spreadsheet into a form: a dry run by default (the mapping, each
    bad row's reasons, what would be created and updated), then the import itself."""
    content = await file.read()
    table = importing.read_table(file.filename or "upload", content)
    refusals: list[dict[str, Any]] = []
    try:
        outcome = await importing.import_rows(
            p.db,
            lambda session: service_for(p, session, who),
            app,
            form,
            table,
            filename=file.filename or "upload",
            mapping=_mapping(mapping),
            upsert=upsert,
            dry_run=dry_run,
            skip_bad_rows=skip_bad_rows,
            zone=zone_of(p.settings.timezone),
            locale=request_locale(request),
        )
        refusals = outcome.refusals
    finally:
        if not dry_run:
            for event in refusals:
                await audit_refusal(request, event)
    return outcome.report


#: Bodies these endpoints take beyond the default limit (platform/limits.py patterns).
LARGER_BODIES = {"/api/records/*/bulk": MAX_BODY_BYTES, "/api/records/*/import": MAX_BODY_BYTES}
