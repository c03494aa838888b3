"""Server-rendered pages: sign-in, dashboards with drill-down, and the records behind a cell.

A first, small part of the web UI (the UI issue builds the rest on the same base): Jinja2
templates from ``ui/templates`` (autoescaped), CSS and one ES module from ``ui/static``, no
build step, nothing from a CDN. Pages are signed in with the session cookie; a page asked
for without one redirects to ``/signin?next=...``. Every page goes through the same
services as the API, so it shows exactly what the caller's grants allow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from formloom.engines.forms import label_text
from formloom.engines.reports import DrillDown
from formloom.engines.reports.render import to_html
from formloom.platform.apps import service
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, platform
from formloom.platform.errors import BadRequest, Forbidden, Unprocessable
from formloom.platform.i18n import LOCALES, Translator, request_locale
from formloom.platform.records.service import ListQuery, RecordService
from formloom.platform.reports.endpoints import report_service
from formloom.platform.reports.service import chart_text, svg_of

UI = Path(__file__).resolve().parents[2] / "ui"
templates = Jinja2Templates(directory=str(UI / "templates"))

router = APIRouter(include_in_schema=False)
PlatformDep = Annotated[Platform, Depends(platform)]
CallerDep = PrincipalDep
#: Most ids a drill-down through a relation resolves (the records page says when it stops).
MAX_RELATED_IDS = 5_000
PAGE_ROWS = 100


def _lang(request: Request) -> str:
    return request_locale(request)


def _render(request: Request, name: str, who: Principal, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": Translator(lang),
            "locales": LOCALES,
            "user": who.username if who.authenticated else None,
            **context,
        },
    )


def _signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def drill_href(app: str, drill: DrillDown) -> str:
    payload = json.dumps(drill.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"/apps/{app}/records/{drill.form}?drill={quote(payload, safe='')}"


@router.get("/", response_model=None)
async def home(request: Request, p: PlatformDep, who: CallerDep) -> Response:
    """The apps the caller holds a role in, with their dashboards and readable forms."""
    if not who.authenticated:
        return _signin_redirect(request)
    lang = _lang(request)
    apps = []
    async with p.db.transaction(write=False) as session:
        records = RecordService(session, p.catalog, principal=who, now=p.clock.now())
        for row in await service.describe_apps(session):
            key = row["key"]
            if not who.holds(key):
                continue
            installed = await p.catalog.get(session, key)
            forms = [
                {"key": form.key, "label": label_text(form.label, lang)}
                for form in installed.spec.forms
                if records.access(installed, form.key).allows("read")
            ]
            apps.append(
                {
                    "key": key,
                    "label": label_text(installed.spec.label, lang),
                    "forms": forms,
                    "dashboards": [
                        {"key": d.key, "label": label_text(d.label, lang)}
                        for d in installed.spec.dashboards
                    ],
                }
            )
    return _render(request, "home.html", who, apps=apps)


@router.get("/signin", response_class=HTMLResponse)
async def signin(request: Request, who: CallerDep, next: str = "/") -> HTMLResponse:
    # only local paths: never an open redirect
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return _render(request, "signin.html", who, next=target)


@router.get("/apps/{app}/dashboards/{dashboard}", response_model=None)
async def dashboard_page(
    app: str, dashboard: str, request: Request, p: PlatformDep, who: CallerDep
) -> Response:
    if not who.authenticated:
        return _signin_redirect(request)
    values = dict(request.query_params)
    lang = _lang(request)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        board, ran = await service.dashboard(installed, dashboard, values, lang)
    tiles = []
    for item, tile in zip(board.items, ran, strict=True):
        report = next(r for r in installed.spec.reports if r.key == item.report)
        label = label_text(report.label, lang)
        if isinstance(tile, Unprocessable | Forbidden):
            tiles.append(
                {"report": item.report, "width": item.width, "label": label, "error": tile.detail}
            )
            continue

        def link(drill: DrillDown) -> str:
            return drill_href(app, drill)

        tiles.append(
            {
                "report": item.report,
                "width": item.width,
                "label": label,
                "svg": svg_of(tile, locale=lang, link=link),
                "table": to_html(
                    tile.result,
                    caption=label,
                    link=link,
                    total=chart_text(lang).total,
                    text=chart_text(lang),
                ),
            }
        )
    filters = [
        {"key": f.key, "type": f.type, "label": label_text(f.label, lang) if f.label else f.key}
        for f in board.filters
    ]
    return _render(
        request,
        "dashboard.html",
        who,
        label=label_text(board.label, lang),
        tiles=tiles,
        filters=filters,
        values=values,
    )


async def _related_ids(records: RecordService, app: str, condition: Any) -> tuple[list[str], bool]:
    """Ids of the caller's records of ``condition.form`` matching its filter (capped)."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await records.list(
            app,
            condition.form,
            ListQuery(
                filter=condition.filter, limit=records.max_page_size, cursor=cursor, fields=[]
            ),
        )
        ids += [item["id"] for item in page.items]
        if page.next_cursor is None or len(ids) >= MAX_RELATED_IDS:
            return ids[:MAX_RELATED_IDS], page.next_cursor is not None
        cursor = page.next_cursor


@router.get("/apps/{app}/records/{form}", response_model=None)
async def records_page(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: CallerDep,
    drill: Annotated[str | None, Query(description="A drill-down from a report cell")] = None,
) -> Response:
    """The records of a form, optionally only those behind a report cell (its drill-down:
    a filter over the form plus conditions on related records)."""
    if not who.authenticated:
        return _signin_redirect(request)
    condition: Any = None
    capped = False
    if drill:
        try:
            parsed = DrillDown.model_validate(json.loads(drill))
        except (ValueError, ValidationError):
            raise BadRequest("The drill-down is not valid.") from None
        if parsed.form != form:
            raise BadRequest("The drill-down is for another form.")
        parts = [parsed.filter] if parsed.filter is not None else []
    lang = _lang(request)
    async with p.db.transaction(write=False) as session:
        records = RecordService(
            session,
            p.catalog,
            principal=who,
            now=p.clock.now(),
            max_page_size=p.settings.max_page_size,
        )
        if drill:
            for related in parsed.related:
                ids, cut = await _related_ids(records, app, related)
                capped = capped or cut
                inside = {"in": [{"var": related.via}, ids]}
                parts.append(inside if related.exists else {"!": inside})
            condition = {"and": parts} if len(parts) > 1 else (parts[0] if parts else None)
        page = await records.list(
            app,
            form,
            ListQuery(filter=condition, limit=min(PAGE_ROWS, records.max_page_size), count=True),
        )
        installed = await p.catalog.get(session, app)
    spec = installed.forms[form]
    hidden = records.access(installed, form).hidden
    columns = [
        {"key": f.key, "label": label_text(getattr(f, "label", None) or f.key, lang)}
        for f in spec.value_fields()
        if f.key not in hidden and f.type not in ("table", "file", "image")
    ]
    rows = [
        {"id": item["id"], "cells": {k: _shown(v) for k, v in item["data"].items()}}
        for item in page.items
    ]
    return _render(
        request,
        "records.html",
        who,
        label=label_text(spec.label, lang),
        columns=columns,
        rows=rows,
        count=page.count,
        more=page.next_cursor is not None,
        capped=MAX_RELATED_IDS if capped else None,
    )


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
