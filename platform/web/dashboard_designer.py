"""The dashboard editor's pages: ``/designer/{app}/dashboards`` (the app's dashboards) and
``/designer/{app}/dashboards/{key}`` (one dashboard; ``new`` starts one), plus the live
tile the editor draws for each report (``/designer/{app}/dashboards/-/tile``).

Like the rule editor, the pages are shells: the server hands the dashboard exactly as
written in the app, the app's reports (with their charts) and, per form, the fields a shared
filter may use, and the revision it was read at, to ``ui/static/dashboard-editor.js``;
saving goes through ``PUT /api/apps/{app}/dashboards/{key}`` (``dry_run`` first, then with
``If-Match``), so the editor never writes anything an import could not.

Invariants:

* only the app's designers (platform admins and the roles its ``design`` grant names) open
  these pages or draw tiles here; others get a 403 page (or a 403 answer), anonymous
  callers the sign-in page;
* a tile is drawn by the same code as the dashboard page (``svg_of``, ``kpi_comparison``),
  run with the caller's own grants, and without drill-down links: the editor's tiles are
  for arranging, not for reading records;
* a filter's choices are the fields the dashboard page can filter on: dates and datetimes
  (and the records' ``created_at`` / ``updated_at``) for a period, fields with options or
  links to another form for a choice.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from formloom.engines.forms import FormSpec, label_text
from formloom.engines.forms.fields import MultiselectField, RelationField, SelectField
from formloom.engines.reports.definition import ChartSpec
from formloom.platform.apps import parts
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Forbidden, NotFound, Problem, Unprocessable
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.reports.endpoints import report_service
from formloom.platform.reports.service import svg_of
from formloom.platform.reports.tiles import kpi_alone, kpi_comparison
from formloom.platform.web import listing
from formloom.platform.web.designer import _problem
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)

#: The path that starts a new dashboard (a dashboard whose key is "new" opens at
#: ``new?existing=1``).
NEW = "new"
#: Record columns a period filter may use besides a form's date fields.
SYSTEM_DATES = ("created_at", "updated_at")
DOING = "change dashboards"


def _filter_fields(form: FormSpec, lang: str) -> dict[str, list[dict[str, str]]]:
    """The fields of ``form`` a shared filter may narrow: ``dates`` for a period,
    ``choices`` (options or a link to another form) for a choice."""
    t = Translator(lang)
    dates = [{"key": key, "label": t(listing.SYSTEM_LABELS[key])} for key in SYSTEM_DATES]
    choices: list[dict[str, str]] = []
    for field in form.fields:
        if field.field_type in ("date", "datetime"):
            dates.append({"key": field.key, "label": listing.field_label(field, lang)})
        elif isinstance(field, SelectField | MultiselectField) and field.options:
            choices.append(
                {"key": field.key, "label": listing.field_label(field, lang), "kind": "options"}
            )
        elif isinstance(field, RelationField):
            choices.append(
                {"key": field.key, "label": listing.field_label(field, lang), "kind": "relation"}
            )
    return {"dates": dates, "choices": choices}


def editor_data(installed: InstalledApp, board: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    """What ``dashboard-editor.js`` starts from (the ``#dashboard-editor-data`` script)."""
    forms = {
        key: {
            "key": key,
            "label": label_text(spec.label, lang),
            "keys": [field.key for field in spec.fields],
            **_filter_fields(spec, lang),
        }
        for key, spec in installed.forms.items()
    }
    reports = [
        {
            "key": report.key,
            "label": label_text(report.label, lang) or report.key,
            "form": report.form,
            "chart": report.chart.model_dump(mode="json", exclude_none=True)
            if report.chart
            else None,
        }
        for report in installed.spec.reports
    ]
    return {
        "app": {
            "key": installed.key,
            "label": label_text(installed.spec.label, lang),
            "locales": list(installed.spec.locales),
        },
        "forms": forms,
        "reports": reports,
        "dashboard": board,
        "revision": installed.version,
    }


@router.get("/designer/{app}/dashboards", response_model=None)
async def dashboards_page(
    app: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    """The app's dashboards: label, key, tiles and filters, each opening in the editor."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, DOING)
    except Problem as problem:
        return await _problem(request, who, problem)
    rows = [
        {
            "key": board.key,
            "label": label_text(board.label, lang) or board.key,
            "tiles": len(board.items),
            "filters": [label_text(f.label, lang) if f.label else f.key for f in board.filters],
        }
        for board in installed.spec.dashboards
    ]
    return render_page(
        request,
        "designer/dashboards.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        dashboards=rows,
    )


@router.get("/designer/{app}/dashboards/-/tile", response_model=None)
async def tile(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    report: str = Query(max_length=200),
    chart: str | None = Query(default=None, max_length=20_000),
) -> JSONResponse:
    """One tile as the dashboard page draws it (its chart, and a KPI's comparison), with
    the tile's own chart when it overrides the report's (``chart``, JSON). A report the
    caller may not run answers its problem in ``error``, as on the dashboard page."""
    lang = request_locale(request)
    override = None
    if chart:
        try:
            override = ChartSpec.model_validate(json.loads(chart))
        except ValueError as error:
            raise Unprocessable(
                "The tile's chart cannot be used.",
                errors=[{"path": "/chart", "code": "invalid", "message": str(error)[:300]}],
            ) from None
    async with p.db.transaction(write=False) as session:
        installed = await parts.designed_app(p, session, who, app, DOING)
        service = report_service(p, session, who)
        try:
            ran = await service.run_saved(installed, report, chart=override, locale=lang)
        except (Unprocessable, Forbidden, NotFound) as problem:
            return JSONResponse({"report": report, "error": problem.detail})
    compare = kpi_comparison(ran, lang)
    return JSONResponse(
        {
            "report": report,
            "label": ran.label,
            "svg": svg_of(kpi_alone(ran) if compare else ran, locale=lang),
            "compare": compare,
        }
    )


@router.get("/designer/{app}/dashboards/{key}", response_model=None)
async def dashboard_editor(
    app: str, key: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    """The editor of one dashboard (``new``: an empty one)."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    wanted = None if key == NEW and "existing" not in request.query_params else key
    try:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, DOING)
        board = parts.find(installed, parts.DASHBOARDS, wanted) if wanted is not None else None
    except Problem as problem:
        return await _problem(request, who, problem)
    data = editor_data(installed, board, lang)
    label = label_text(board.get("label"), lang) if board and board.get("label") else wanted
    return render_page(
        request,
        "designer/dashboards-editor.html",
        who,
        app=data["app"],
        board_key=wanted,
        board_label=label,
        page_data=data,
    )
