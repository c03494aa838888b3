"""Server-rendered pages: sign-in, the home page and dashboards with drill-down (the records
behind a cell, the app pages, lists and forms are in ``runtime.py``).

A first, small part of the web UI (the UI issue builds the rest on the same base): Jinja2
templates from ``ui/templates`` (autoescaped), CSS and one ES module from ``ui/static``, no
build step, nothing from a CDN. Pages are signed in with the session cookie; a page asked
for without one redirects to ``/signin?next=...``. Every page goes through the same
services as the API, so it shows exactly what the caller's grants allow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from formloom.engines.forms import label_text, title_of
from formloom.engines.reports import DrillDown
from formloom.engines.reports.definition import DashboardSpec
from formloom.engines.reports.render import to_html
from formloom.platform.apps import service
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Forbidden, Problem, Unprocessable
from formloom.platform.i18n import LOCALES, Translator, request_locale
from formloom.platform.permissions.guard import may_design
from formloom.platform.records.service import RecordService
from formloom.platform.reports.endpoints import report_service
from formloom.platform.reports.service import chart_text, svg_of
from formloom.platform.reports.tiles import (
    filter_controls,
    kpi_alone,
    kpi_comparison,
    not_applied,
)

UI = Path(__file__).resolve().parents[2] / "ui"
templates = Jinja2Templates(directory=str(UI / "templates"))

router = APIRouter(include_in_schema=False)


def _lang(request: Request) -> str:
    return request_locale(request)


def _timezone(request: Request) -> str:
    state: Any = getattr(request.app.state, "platform", None)
    zone = getattr(getattr(state, "settings", None), "timezone", None)
    return zone if isinstance(zone, str) else "UTC"


def render_page(request: Request, name: str, who: Principal, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": Translator(lang),
            "locales": LOCALES,
            "user": who.username if who.authenticated else None,
            # the clinic's zone: scripts show and read times on its clock (form-values.js)
            "timezone": _timezone(request),
            **context,
        },
    )


def signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def drill_href(app: str, drill: DrillDown) -> str:
    payload = json.dumps(drill.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"/apps/{app}/records/{drill.form}?drill={quote(payload, safe='')}"


@router.get("/", response_model=None)
async def home(request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The apps the caller holds a role in, with their dashboards and readable forms."""
    if not who.authenticated:
        return signin_redirect(request)
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
                    "description": label_text(installed.spec.description, lang),
                    "forms": forms,
                    "dashboards": [
                        {"key": d.key, "label": label_text(d.label, lang)}
                        for d in installed.spec.dashboards
                    ],
                }
            )
    return render_page(request, "home.html", who, apps=apps)


@router.get("/signin", response_class=HTMLResponse)
async def signin(request: Request, who: PrincipalDep, next: str = "/") -> HTMLResponse:
    # only local paths: never an open redirect
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return render_page(request, "signin.html", who, next=target)


@router.get("/apps/{app}/dashboards/{dashboard}", response_model=None)
async def dashboard_page(
    app: str, dashboard: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    values = dict(request.query_params)
    lang = _lang(request)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        board, ran = await service.dashboard(installed, dashboard, values, lang)
        controls = await _filter_controls(service.records, installed, board, values, lang)
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

        compare = kpi_comparison(tile, lang)
        tiles.append(
            {
                "report": item.report,
                "width": item.width,
                "label": label,
                "compare": compare,
                "not_applied": not_applied(installed, board, item.report, values, lang),
                "svg": svg_of(kpi_alone(tile) if compare else tile, locale=lang, link=link),
                "table": to_html(
                    tile.result,
                    caption=label,
                    link=link,
                    total=chart_text(lang).total,
                    text=chart_text(lang),
                ),
            }
        )
    return render_page(
        request,
        "dashboard.html",
        who,
        label=label_text(board.label, lang),
        tiles=tiles,
        filters=controls,
        values=values,
        app_key=app,
        board_key=board.key,
        # the app's designers may open the dashboard editor from here
        may_edit=may_design(who, app, installed.spec.design),
    )


async def _filter_controls(
    records: RecordService,
    installed: service.InstalledApp,
    board: DashboardSpec,
    values: dict[str, str],
    lang: str,
) -> list[dict[str, Any]]:
    """The board's filters with their choices, and the title of a record a relation filter
    holds (read as the caller may: a record they may not read shows no title)."""

    def hidden(form: str) -> frozenset[str]:
        access = records.access(installed, form)
        if access.allows("read"):
            return access.hidden
        return frozenset(f.key for f in installed.forms[form].fields)

    controls = filter_controls(installed, board, lang, hidden)
    for control in controls:
        chosen = values.get(control["key"])
        if control["kind"] != "relation" or not chosen:
            continue
        target = installed.forms[control["target"]]
        try:
            record = await records.get(installed.key, target.key, chosen)
        except Problem:
            continue
        control["title"] = title_of(target, records.view(record)["data"], lang)
    return controls
