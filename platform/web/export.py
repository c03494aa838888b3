"""CSV export of a form's records: what a list shows (its filter, its drill-down, its sort,
its columns), every page of it, streamed.

``GET /api/exports/{app}/{form}`` takes the list parameters (``filter``, ``sort``,
``fields``, ``drill``) and answers UTF-8 CSV with a byte order mark (so spreadsheet programs
read Chinese text correctly). It reads through the record service page by page (keyset
cursors, one short read transaction per page), so the caller's grants apply to every row:
rows outside their row filters are not exported and hidden fields are never columns —
naming one in ``fields`` is the same 400 as in the list API. Stored values are written as
they are stored (select values, record ids, ``true``/``false``); multiselect values are
joined with ``; ``, files (a signature too) by their names, tables as JSON, rich text as
its plain text (no tags, one line per paragraph), people (user fields) by their display
names — except datetimes (datetime fields
and ``created_at`` / ``updated_at``), which people read in a spreadsheet: they are written on
the clinic's clock (``settings.timezone``) as ``2026-12-04 10:00:00``, and their column
header names the zone (``Starts at (Asia/Shanghai)``); a form whose records are each on
their own clock (the app's ``zone``, a branch's zone: docs/time-zones.md) writes each row's
times in its record's zone and names it in a last "Time zone" column. Text that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, unless it is
only digits and punctuation, like a phone number) is prefixed with ``'``. Every export is
audited (``record.export``: who, the form and what was asked for — filter, search, drill-down,
sort, columns), whether or not the form is sensitive: a CSV of phone numbers leaves the
building.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from formloom.engines.forms import label_text
from formloom.engines.forms.fields import DatetimeField, RichTextField
from formloom.engines.forms.localtime import local_text, zone_name, zone_of
from formloom.engines.forms.richtext import plain_text
from formloom.engines.reports.cells import cell_text
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.people import service as people
from formloom.platform.records.service import ListQuery, service_for
from formloom.platform.rules import zones
from formloom.platform.web import listing, xlsx

router = APIRouter(tags=["records"])
BOM = "\ufeff"
SYSTEM = ("created_at", "created_by", "updated_at", "updated_by")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        return str(value.get("name", "")) if "content_type" in value else json.dumps(value)
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return "; ".join(value)
        if all(isinstance(item, dict) and "content_type" in item for item in value):
            return "; ".join(str(item.get("name", "")) for item in value)
        return json.dumps(value, ensure_ascii=False)
    return cell_text(str(value))


async def _name_people(session: Any, spec: Any, items: list[dict[str, Any]]) -> None:
    """People in user fields by their display names, never their ids (in place)."""
    names = await people.names(session, spec, [item["data"] for item in items])
    if not names:
        return
    for item in items:
        data = item["data"]
        for field in people.user_fields(spec.fields):
            value = data.get(field.key)
            if isinstance(value, list):
                data[field.key] = [names.get(v, v) for v in value]
            elif isinstance(value, str):
                data[field.key] = names.get(value, value)


def _plain(value: Any) -> Any:
    """A rich text value as its text (an export shows words, not tags)."""
    return plain_text(value) if isinstance(value, str) else value


def _time(value: Any, zone: tzinfo) -> str:
    """The cell of a datetime column: the instant on the record's clock (a value not in
    the stored form is written as any other)."""
    local = local_text(value, zone, seconds=True)
    return local if local is not None else _cell(value)


def _line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@router.get(
    "/api/exports/{app}/{form}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, xlsx.MEDIA_TYPE: {}},
            "description": "The records as CSV, or as XLSX with `format=xlsx`",
        }
    },
)
async def export_csv(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    filter: Annotated[str | None, Query(description="JsonLogic filter, as JSON")] = None,
    sort: Annotated[
        str | None, Query(description="e.g. `-created_at,name`; absent: as the list page")
    ] = None,
    fields: Annotated[str | None, Query(description="Comma-separated field keys")] = None,
    drill: Annotated[str | None, Query(description="A report cell's drill-down")] = None,
    q: Annotated[str | None, Query(description="The list's quick-search term")] = None,
    format: Annotated[
        Literal["csv", "xlsx"], Query(description="csv, or xlsx: dates and numbers kept as such")
    ] = "csv",
) -> Response:
    """The records of a form matching a filter, as CSV (UTF-8 with BOM) or XLSX, every page."""
    lang = request_locale(request)
    t = Translator(lang)
    rule = listing.parse_json_param(filter, "filter")
    parsed_drill = listing.parse_drill(drill, form)
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    system = [key for key in SYSTEM if chosen is None or key in chosen]
    if chosen is not None:
        chosen = [key for key in chosen if key not in SYSTEM]
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        installed, spec = await records.load_form(app, form)
        sort = sort or spec.sort or "-id"  # the list page's own default order
        access = records.allowed(installed, form, "read")
        records.allowed(installed, form, "export")  # a download is an action of its own
        condition, _ = await listing.combined_filter(records, app, parsed_drill, rule)
        source = zones.source_of(installed)
        relation = source.relation if source is not None and source.target_of(form) else None
        # each row's clock needs its zone relation, read even when it is not a column (and
        # not when it is hidden from the caller: those rows are then on the deployment's)
        wanted = chosen
        if chosen is not None and relation and relation not in chosen + list(access.hidden):
            wanted = [*chosen, relation]
        query = ListQuery(
            filter=condition,
            sort=sort,
            limit=records.max_page_size,
            fields=wanted,
            q=q,
            also="export",
        )
        first = await records.list(app, form, query)
        # an export is audited like a sensitive read, whatever the form: what was asked for
        records.audit_after_success(
            "record.export",
            app=app,
            form=form,
            detail={
                "filter": rule,
                "q": q,
                "drill": drill is not None,
                "sort": sort,
                "fields": chosen,
                "more_than_a_page": first.next_cursor is not None,
                "format": format,
            },
        )
    keys = (
        chosen
        if chosen is not None
        else [f.key for f in spec.value_fields() if f.key not in access.hidden]
    )
    home = zone_name(zone_of(p.settings.timezone))
    # A form whose records are on their own clocks (their branch's zone, docs/time-zones.md)
    # writes each row's times in its zone and says which in a last column; any other form
    # writes the deployment's, named in the headers.
    own_clocks = relation is not None
    in_zone = "" if own_clocks else f" ({home})"
    labels = []
    timed_keys = []
    rich_keys = []
    for key in keys:
        field = spec.field(key)
        label = listing.field_label(field, lang) if field is not None else key
        timed = isinstance(field, DatetimeField)
        labels.append(label + in_zone if timed else label)
        timed_keys.append(timed)
        rich_keys.append(isinstance(field, RichTextField))
    for key in system:
        timed = key.endswith("_at")
        labels.append(t(listing.SYSTEM_LABELS[key]) + (in_zone if timed else ""))
    if own_clocks:
        labels.append(t("Time zone"))

    def lines(items: list[dict[str, Any]], clocks: list[str]) -> str:
        out = []
        for item, clock in zip(items, clocks, strict=True):
            zone = zone_of(clock)
            row = [item["id"]]
            row += [
                _time(item["data"].get(key), zone)
                if timed
                else _cell(_plain(item["data"].get(key)) if rich else item["data"].get(key))
                for key, timed, rich in zip(keys, timed_keys, rich_keys, strict=True)
            ]
            row += [_time(item[key], zone) if key.endswith("_at") else _cell(item[key])
                    for key in system]  # fmt: skip
            out.append(_line(row + [clock] if own_clocks else row))
        return "".join(out)

    async def clocks_of(session: Any, items: list[dict[str, Any]]) -> list[str]:
        # every page passes here with a session: its people are named here too
        await _name_people(session, spec, items)
        if not own_clocks:
            return [home] * len(items)
        return await zones.record_zones(
            session, installed, form, [item["data"] for item in items], home
        )

    async with p.db.transaction(write=False) as session:
        first_clocks = await clocks_of(session, first.items)
    if format == "xlsx":
        sheet = xlsx.Sheet(label_text(spec.label, lang) or form, ["ID", *labels])
        kinds = [spec.field(key) for key in keys] + ["datetime" if key.endswith("_at") else None
                                                     for key in system]  # fmt: skip
        page, clocks = first, first_clocks
        while True:
            for item, clock in zip(page.items, clocks, strict=True):
                zone = zone_of(clock)
                raw = [
                    _plain(item["data"].get(key)) if rich else item["data"].get(key)
                    for key, rich in zip(keys, rich_keys, strict=True)
                ] + [item[key] for key in system]
                cells = [xlsx.value(v, kind, zone) for v, kind in zip(raw, kinds, strict=True)]
                sheet.append([item["id"], *cells, *([clock] if own_clocks else [])])
            if page.next_cursor is None:
                break
            async with p.db.transaction(write=False) as session:
                reader = service_for(p, session, who)
                page = await reader.list(app, form, replace(query, cursor=page.next_cursor))
                clocks = await clocks_of(session, page.items)
        book = f"{label_text(spec.label, lang) or form}.xlsx"
        return Response(
            sheet.bytes(),
            media_type=xlsx.MEDIA_TYPE,
            headers={
                "Content-Disposition": f'attachment; filename="{form}.xlsx"; '
                f"filename*=UTF-8''{quote(book, safe='')}",
                "Cache-Control": "no-store",
            },
        )

    async def stream() -> AsyncIterator[str]:
        yield BOM + _line(["ID", *map(cell_text, labels)])
        yield lines(first.items, first_clocks)
        cursor = first.next_cursor
        while cursor is not None:
            async with p.db.transaction(write=False) as session:
                reader = service_for(p, session, who)
                page = await reader.list(app, form, replace(query, cursor=cursor))
                clocks = await clocks_of(session, page.items)
            yield lines(page.items, clocks)
            cursor = page.next_cursor

    name = f"{label_text(spec.label, lang) or form}.csv"
    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{form}.csv"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": "no-store",
        },
    )
