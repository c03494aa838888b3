"""Printing: a record, or a list, on A4 paper a clinic can hand to a patient — and a record's
PDF, the same page rendered by WeasyPrint.

``GET /apps/{app}/forms/{form}/{id}/print`` is the record page without the application
around it: the app's name (and the record's branch, when the app gives records one), the
form's sections with their labels in the reader's language, the values as the record page
shows them (option labels, related records' titles, times on the record's clock — its
branch's zone, named when it is not the deployment's) and a footer saying who printed it
when. ``GET /api/records/{app}/{form}/{id}/pdf`` renders that same HTML to PDF.

Invariants:

* A printout never shows more than the caller may read: the record is read through
  ``RecordService.get`` (grants, row filters: 403 or 404 exactly as the record API) and its
  fields go through ``RecordService.view`` and the caller's hidden fields, the path the record
  page takes. Values are escaped by ``listing.renderer`` as on that page.
* The PDF fetches nothing: its stylesheet is inlined and WeasyPrint's URL fetcher refuses
  every URL but inline ``data:`` ones, so a value cannot make the server request an address.
  Images are named (their alt text), not embedded — except a signature: the server reads its
  PNG through the file permission (``FileService.fetch`` with the record, as a download
  would) and writes it into the page as a ``data:`` URL.
* Every printout is audited (``record.print``, with the format), and printing a list is an
  export (``record.export`` with the format ``print``): it needs the ``export`` grant, lists
  the rows the caller may both read and export, and is refused like the CSV otherwise.

``GET /apps/{app}/forms/{form}/print`` prints a list with the list page's parameters
(``filter``, ``q``, ``drill``, ``sort``) and its columns (``fields``), up to ``LIST_ROWS``
rows; a longer list says how many were left out and points to the export.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import tzinfo
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from formloom.engines.forms import FormSpec, label_text
from formloom.engines.forms.fields import SectionField, SignatureField, TableField
from formloom.engines.forms.localtime import local_text, zone_name, zone_of
from formloom.engines.forms.record import title_field
from formloom.platform import errors
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import Forbidden, NotFound, Problem
from formloom.platform.files.service import FileService
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.records.access import iso
from formloom.platform.records.service import ListQuery, service_for
from formloom.platform.rules import zones
from formloom.platform.web import listing
from formloom.platform.web.listing import Shown, field_label
from formloom.platform.web.pages import UI, render_page, signin_redirect, templates

router = APIRouter(include_in_schema=False)
pdf_router = APIRouter(prefix="/api/records", tags=["records"])

#: Rows a printed list shows at most: a longer list is an export, not a printout.
LIST_ROWS = 500
#: Columns a printed list shows when the caller names none (the list page's default).
DEFAULT_COLUMNS = 7
PDF = "application/pdf"


@lru_cache(maxsize=1)
def _stylesheet() -> Markup:
    """The print stylesheet, inlined in every printout (the PDF fetches nothing)."""
    return Markup((UI / "static" / "print.css").read_text(encoding="utf-8"))


def _clinic_zone(p: Platform) -> tzinfo:
    return zone_of(p.settings.timezone)


def _shown(
    lang: str,
    installed: InstalledApp,
    titles: dict[str, str],
    zone: tzinfo,
    named: bool,
    record_id: str | None = None,
) -> Shown:
    t = Translator(lang)
    return Shown(
        lang=lang,
        app=installed.key,
        titles=titles,
        forms=installed.forms,
        yes=t("Yes"),
        no=t("No"),
        signature=t("Signature"),
        signed=t("Signed"),
        zone=zone,
        named=named,
        record_id=record_id,
    )


def _branch(
    installed: InstalledApp, form: str, data: dict[str, Any], titles: dict[str, str]
) -> str | None:
    """The title of the record the app's zone relation points at (the clinic's branch),
    when the record has one the caller may read (a hidden relation is absent from ``data``)."""
    source = zones.source_of(installed)
    if source is None or source.target_of(form) is None:
        return None
    value = data.get(source.relation)
    return titles.get(value) if isinstance(value, str) else None


def record_groups(
    spec: FormSpec, data: dict[str, Any], hidden: frozenset[str], ctx: Shown
) -> list[dict[str, Any]]:
    """The record's readable fields by section, each value as the record page shows it."""
    groups = []
    for section, fields in listing.sections(spec, hidden):
        groups.append(
            {
                "key": section.key if isinstance(section, SectionField) else "",
                "label": field_label(section, ctx.lang) if section else "",
                "fields": [
                    {
                        "key": f.key,
                        "label": field_label(f, ctx.lang),
                        "wide": isinstance(f, TableField)
                        or f.field_type in ("textarea", "richtext", "signature"),
                        "html": listing.show(f, data.get(f.key), ctx),
                    }
                    for f in fields
                ],
            }
        )
    return groups


async def record_sheet(
    p: Platform, who: Principal, app: str, form: str, record_id: str, lang: str, fmt: str
) -> dict[str, Any]:
    """What a record's printout shows (the template's context), read with the caller's
    grants; the printout is audited once the read has succeeded."""
    home = _clinic_zone(p)
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        installed, spec = await records.load_form(app, form)
        access = records.allowed(installed, form, "read")
        record = records.view(await records.get(app, form, record_id))
        data: dict[str, Any] = record["data"]
        titles = await listing.titles_for(records, installed, spec, [data], lang, home)
        own = await zones.record_zone(session, installed, form, data, zone_name(home))
        records.audit_after_success(
            "record.print", app=app, form=form, record_id=record["id"], detail={"format": fmt}
        )
    named = own != zone_name(home)
    zone = zone_of(own) if named else home
    # the record's own page shows its images (a signature, stars, formatted text) as the
    # record page does; its files are read through the record (download permission)
    ctx = _shown(lang, installed, titles, zone, named, record_id=record["id"])
    t = Translator(lang)
    return {
        "kind": "record",
        "app_label": label_text(installed.spec.label, lang) or app,
        "branch": _branch(installed, form, data, titles),
        "form_label": label_text(spec.label, lang) or form,
        "title": listing.record_title(spec, data, lang, record["id"], zone, named=named),
        "groups": record_groups(spec, data, access.hidden, ctx),
        "facts": [
            (t("Record"), record["id"]),
            (t("Version"), str(record["version"])),
            (t("Last changed"), _when(record["updated_at"], zone, named)),
        ],
        "printed": _printed(p, who, zone, named, t),
        # the signatures the printout shows (the PDF embeds them: record_pdf)
        "signatures": [
            data[f.key]["id"]
            for f in spec.value_fields()
            if isinstance(f, SignatureField)
            and f.key not in access.hidden
            and isinstance(data.get(f.key), dict)
            and isinstance(data[f.key].get("id"), str)
        ],
    }


def _when(value: str, zone: tzinfo, named: bool) -> str:
    return local_text(value, zone, named=named) or value


def _printed(p: Platform, who: Principal, zone: tzinfo, named: bool, t: Translator) -> str:
    now = iso(p.clock.now())  # the stored form, as records' times are
    when = local_text(now, zone, named=True) or now
    return t("Printed by {who} on {when}", who=who.username or "", when=when)


def _page(request: Request, who: Principal, sheet: dict[str, Any]) -> HTMLResponse:
    response = render_page(request, "print/sheet.html", who, css=_stylesheet(), **sheet)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- a record ----------------------------------------------------------------------------------


@router.get(
    "/apps/{app}/forms/{form}/{record_id}/print", response_model=None, include_in_schema=False
)
async def record_print(
    app: str, form: str, record_id: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    """A record on A4, for the browser's Print (or Save as PDF)."""
    if not who.authenticated:
        return signin_redirect(request)
    try:
        sheet = await record_sheet(p, who, app, form, record_id, request_locale(request), "html")
    except Problem as problem:
        return await _refused(request, who, problem)
    return _page(request, who, sheet)


async def _refused(request: Request, who: Principal, problem: Problem) -> HTMLResponse:
    """A refusal as a page, a 403 audited as the API's error handler audits it (as the
    record page does)."""
    if isinstance(problem, Forbidden) and problem.audit is not None:
        await errors.audit_refusal(request, problem.audit)
    response = render_page(request, "runtime/problem.html", who, problem=problem)
    response.status_code = problem.status
    return response


class _NoFetching:
    """WeasyPrint's URL fetcher for printouts before WeasyPrint 68 (a function): nothing is
    fetched but inline ``data:`` URLs (see the module's invariants); WeasyPrint logs the
    refusal and leaves the resource out."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("data:"):  # inline: the bytes are in the page already
            from weasyprint.urls import default_url_fetcher  # type: ignore[import-untyped,unused-ignore]

            return default_url_fetcher(url)
        raise ValueError(f"a printout fetches nothing ({url[:60]})")

    def __call__(self, url: str) -> Any:
        return self.fetch(url)


def _fetcher() -> Any:
    """The URL fetcher of a printout: ``data:`` URLs only (urllib's data handler, no I/O)."""
    try:
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # WeasyPrint before 68
        return _NoFetching()
    return URLFetcher(allowed_protocols={"data"})


def pdf_of(html: str) -> bytes:
    """The printout's HTML as a PDF (A4 and margins come from the print stylesheet)."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # imported when first used

    document: bytes = HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    return document


async def _embed_signatures(
    p: Platform, who: Principal, record_id: str, file_ids: list[str], html: str
) -> str:
    """``html`` with each signature's image as a ``data:`` URL (read as a download of it
    through the record would be: a file the caller may not read stays a link)."""
    if not file_ids:
        return html
    async with p.db.transaction(write=False) as session:
        files = FileService(
            session,
            p.catalog,
            principal=who,
            now=p.clock.now(),
            max_bytes=p.settings.max_file_bytes,
        )
        for file_id in file_ids:
            try:
                row = await files.fetch(file_id, record_id)
            except NotFound:
                continue
            if row.content_type != "image/png":
                continue
            source = f'src="/api/files/{file_id}?record={record_id}"'
            inline = base64.b64encode(row.content).decode("ascii")
            html = html.replace(source, f'src="data:image/png;base64,{inline}"')
    return html


@pdf_router.get(
    "/{app}/{form}/{record_id}/pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "The record's printout as a PDF"}},
    summary="A record as a PDF (its printout; fields hidden from you left out)",
)
async def record_pdf(
    app: str,
    form: str,
    record_id: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
) -> Response:
    lang = request_locale(request)
    sheet = await record_sheet(p, who, app, form, record_id, lang, "pdf")
    html = templates.get_template("print/sheet.html").render(
        lang=lang, t=Translator(lang), css=_stylesheet(), pdf=True, **sheet
    )
    html = await _embed_signatures(p, who, record_id, sheet["signatures"], html)
    document = await run_in_threadpool(pdf_of, html)
    name = f"{sheet['form_label']} {sheet['title']}.pdf"
    return Response(
        document,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{form}-{record_id}.pdf"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": "no-store",
        },
    )


# -- a list ------------------------------------------------------------------------------------


async def list_sheet(
    p: Platform,
    who: Principal,
    app: str,
    form: str,
    lang: str,
    query: ListQuery,
    chosen: list[str] | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """What a printed list shows: the rows the caller may read and export (the title first,
    then the columns asked for, else the list page's defaults), each row's times on its
    record's clock."""
    home = _clinic_zone(p)
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        installed, spec = await records.load_form(app, form)
        access = records.allowed(installed, form, "read")
        records.allowed(installed, form, "export")  # a printed list leaves the building too
        title = title_field(spec)
        title_key = title.key if title is not None and title.key not in access.hidden else None
        fields = _columns(spec, access.hidden, chosen, title_key)
        source = zones.source_of(installed)
        relation = source.relation if source is not None and source.target_of(form) else None
        wanted = None
        if chosen is not None:
            # a hidden or unknown key is the list API's 400 (and its probe audited)
            extra = [k for k in (title_key, relation) if k and k not in access.hidden]
            wanted = list(dict.fromkeys([*chosen, *extra]))
        query = replace(
            query, sort=query.sort or spec.sort or "-id", fields=wanted,
            limit=min(LIST_ROWS, records.max_page_size),
        )  # fmt: skip
        page = await records.list(app, form, query)
        items = list(page.items)
        while page.next_cursor is not None and len(items) < LIST_ROWS:
            page = await records.list(app, form, replace(query, cursor=page.next_cursor))
            items += page.items
        more = page.next_cursor is not None or len(items) > LIST_ROWS
        items = items[:LIST_ROWS]
        titles = await listing.titles_for(
            records, installed, spec, [i["data"] for i in items], lang, home
        )
        clocks = await zones.record_zones(
            session, installed, form, [i["data"] for i in items], zone_name(home)
        )
        records.audit_after_success(
            "record.export",
            app=app,
            form=form,
            detail={**details, "sort": query.sort, "fields": chosen, "format": "print"},
        )
    t = Translator(lang)
    renders: dict[str, list[Any]] = {}
    rows = []
    for item, clock in zip(items, clocks, strict=True):
        row_zone, named = zone_of(clock), clock != zone_name(home)
        if clock not in renders:
            ctx = _shown(lang, installed, titles, row_zone, named)
            renders[clock] = [listing.renderer(f, ctx) for f in fields]
        rows.append(
            {
                "id": item["id"],
                "title": listing.record_title(
                    spec, item["data"], lang, item["id"], row_zone, named=named
                ),
                "cells": [
                    Markup(render(item["data"].get(f.key), None))
                    for f, render in zip(fields, renders[clock], strict=True)
                ],
            }
        )
    return {
        "kind": "list",
        "app_label": label_text(installed.spec.label, lang) or app,
        "branch": None,
        "form_label": label_text(spec.label, lang) or form,
        "title": label_text(spec.label, lang) or form,
        "title_label": field_label(title, lang) if title_key and title else t("Record"),
        "columns": [field_label(f, lang) for f in fields],
        "rows": rows,
        "more": more,
        "limit": LIST_ROWS,
        "filtered": any(details.get(k) for k in ("filter", "q", "drill")),
        "printed": _printed(p, who, home, False, t),
    }


def _columns(
    spec: FormSpec, hidden: frozenset[str], chosen: list[str] | None, title_key: str | None
) -> list[Any]:
    """The printed columns after the title: those named, else the list page's defaults."""
    listed = [f for f in listing.listed_fields(spec, hidden) if f.key != title_key]
    if chosen is None:
        return [f for f in listed if f.field_type != "textarea"][:DEFAULT_COLUMNS]
    by_key = {f.key: f for f in listed}
    return [by_key[key] for key in chosen if key in by_key]


@router.get("/apps/{app}/forms/{form}/print", response_model=None, include_in_schema=False)
async def list_print(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    filter: Annotated[str | None, Query()] = None,
    sort: Annotated[str | None, Query()] = None,
    fields: Annotated[str | None, Query()] = None,
    drill: Annotated[str | None, Query()] = None,
    q: Annotated[str | None, Query()] = None,
) -> Response:
    """A list as the list page shows it (its filter, search, drill-down, order, columns)."""
    if not who.authenticated:
        return signin_redirect(request)
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    try:
        rule = listing.parse_json_param(filter, "filter")
        parsed_drill = listing.parse_drill(drill, form)
        async with p.db.transaction(write=False) as session:
            condition, _ = await listing.combined_filter(
                service_for(p, session, who), app, parsed_drill, rule
            )
        query = ListQuery(
            filter=condition, sort=sort, limit=LIST_ROWS, fields=None, q=q, also="export"
        )
        details = {"filter": rule, "q": q, "drill": drill is not None}
        sheet = await list_sheet(p, who, app, form, request_locale(request), query, chosen, details)
    except Problem as problem:
        return await _refused(request, who, problem)
    return _page(request, who, sheet)
