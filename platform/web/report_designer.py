"""The report builder's pages: ``/designer/{app}/reports`` (the app's saved reports) and
``/designer/{app}/reports/{report}`` (one report; ``new`` starts one), and the builder's live
preview, ``POST /designer/{app}/reports/preview``.

The editor is a shell like the rule editor: the server hands the report exactly as written
in the app, the app's forms with their fields (and the fields one relation hop away), and
the revision it was read at, to ``ui/static/report-builder.js``; saving goes through
``PUT /api/apps/{app}/reports/{report}`` (``dry_run`` first, then with ``If-Match``), so the
builder never writes anything an import could not.

Invariants:

* the list shows the reports whose form the caller may read (as ``GET /api/reports/{app}``);
  the edit links and the editor itself are only for the app's designers (platform admins
  and the roles its ``design`` grant names); others get no links and a 403 page;
* the preview runs the report being edited once, as ``POST /api/reports/{app}`` runs an
  ad hoc spec (the same :class:`ReportService`, with the caller's grants), and draws it as
  a dashboard tile is drawn (``svg_of`` and ``to_html``), chart settings included — the ad
  hoc endpoint takes a bare pivot and could draw neither the chosen measure nor the axis
  labels, and a second request for the chart would run the query twice;
* the preview's errors point into the report as the save's do (``/rows/0/field``,
  ``/chart/measure``), so the builder shows both at the same element.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from formloom.engines.forms import label_text
from formloom.engines.forms.fields import MultiselectField, RelationField, SelectField
from formloom.engines.reports.definition import ReportSpec, report_problems
from formloom.engines.reports.render import to_html
from formloom.platform import jsonsafe
from formloom.platform.apps.parts import designed_app
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import NotFound, Problem, Unprocessable
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.permissions import guard
from formloom.platform.reports.endpoints import NO_DRILL, report_service
from formloom.platform.reports.service import (
    Ran,
    chart_text,
    svg_of,
    total_of,
    with_filter,
)
from formloom.platform.web import listing
from formloom.platform.web.designer import _problem
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)

#: The path that starts a new report (a report whose key is "new" opens at ``new?existing=1``).
NEW = "new"
#: Field types a report can neither group by nor aggregate.
UNUSABLE = frozenset({"section", "table", "file", "image", "signature"})
#: What the list calls each chart type (messages, translated by the page).
CHART_WORDS = {
    "bar": "Bars",
    "stacked_bar": "Stacked bars",
    "line": "Line",
    "pie": "Pie",
    "donut": "Donut",
    "funnel": "Funnel",
    "kpi": "One number (KPI)",
}
#: The record columns a report may use besides fields (``SYSTEM_FIELDS``), with their labels.
SYSTEM_LABELS = {
    "created_at": ("Created at", "datetime"),
    "updated_at": ("Changed at", "datetime"),
    "created_by": ("Created by", "text"),
    "updated_by": ("Changed by", "text"),
}


def _fields(installed: InstalledApp, form: str, lang: str) -> list[dict[str, Any]]:
    """The fields of ``form`` a report can use, with their type, options and target."""
    out = []
    for field in installed.forms[form].fields:
        if field.field_type in UNUSABLE:
            continue
        meta: dict[str, Any] = {
            "key": field.key,
            "label": listing.field_label(field, lang),
            "type": getattr(field, "result_type", None) or field.field_type,
        }
        if isinstance(field, SelectField | MultiselectField):
            meta["options"] = [
                {"value": o.value, "label": label_text(o.label, lang) or o.value}
                for o in field.options
            ]
        if isinstance(field, RelationField):
            meta["target"] = field.target
        out.append(meta)
    return out


def _editor_data(
    installed: InstalledApp, report: dict[str, Any] | None, lang: str
) -> dict[str, Any]:
    t = Translator(lang)
    return {
        "app": {
            "key": installed.key,
            "label": label_text(installed.spec.label, lang),
            "locales": list(installed.spec.locales),
        },
        "forms": [
            {
                "key": key,
                "label": label_text(spec.label, lang),
                "fields": _fields(installed, key, lang),
            }
            for key, spec in installed.forms.items()
        ],
        "system": [
            {"key": key, "label": t(text), "type": kind}
            for key, (text, kind) in SYSTEM_LABELS.items()
        ],
        "report": report,
        "revision": installed.version,
    }


@router.get("/designer/{app}/reports", response_model=None)
async def reports_page(app: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The app's saved reports the caller may read; edit links for its designers."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            service = report_service(p, session, who)
            installed = await service.app(app)
            readable = {
                form
                for form in installed.forms
                if service.records.access(installed, form).allows("read")
            }
    except Problem as problem:
        return await _problem(request, who, problem)
    design = guard.may_design(who, app, installed.spec.design)
    rows = []
    for report in installed.spec.reports:
        if report.form not in readable and not design:
            continue
        form = installed.forms.get(report.form)
        rows.append(
            {
                "key": report.key,
                "label": label_text(report.label, lang),
                "description": label_text(report.description, lang) if report.description else "",
                "form": label_text(form.label, lang) if form is not None else report.form,
                "chart": CHART_WORDS[report.chart.type] if report.chart else "No chart",
                "dimensions": len(report.rows) + len(report.columns),
                "measures": len(report.measures),
            }
        )
    return render_page(
        request,
        "designer/reports.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        reports=rows,
        design=design,
    )


@router.get("/designer/{app}/reports/{report}", response_model=None)
async def report_page(
    app: str, report: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    """The builder, on a saved report or (``new``) an empty one; designers only."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    key = None if report == NEW and "existing" not in request.query_params else report
    try:
        async with p.db.transaction(write=False) as session:
            installed = await designed_app(p, session, who, app, "change reports")
        document = None
        if key is not None:
            document = next(
                (r for r in installed.document.get("reports", []) if r.get("key") == key), None
            )
            if document is None:
                raise NotFound(f"App '{app}' has no report '{key[:80]}'.")
    except Problem as problem:
        return await _problem(request, who, problem)
    data = _editor_data(installed, document, lang)
    label = label_text(document.get("label"), lang) if document and document.get("label") else key
    return render_page(
        request,
        "designer/reports-editor.html",
        who,
        app=data["app"],
        report_key=key,
        report_label=label,
        page_data=data,
    )


def _candidate(body: Any) -> ReportSpec:
    """The report being edited as a :class:`ReportSpec` (a missing key or label filled in,
    since a draft may not have them yet), or a 422 pointing into it."""
    if not isinstance(body, dict):
        raise Unprocessable(
            "The body must be a report (a JSON object).",
            errors=[{"path": "", "code": "type", "message": "must be an object"}],
        )
    found = jsonsafe.problems(body)
    if found:
        raise Unprocessable(
            "The report holds values that cannot be used.",
            errors=[
                {"path": pointer, "code": "invalid_value", "message": message}
                for pointer, message in found
            ],
        )
    draft = {"key": "draft", "label": "", **body}
    if not isinstance(draft.get("key"), str) or not draft["key"]:
        draft["key"] = "draft"
    try:
        return ReportSpec.model_validate(draft, strict=False)
    except ValidationError as exc:
        raise Unprocessable(
            "The report is not valid.",
            errors=[
                {
                    "path": "/" + "/".join(str(part) for part in err["loc"]),
                    "code": err["type"],
                    "message": err["msg"],
                }
                for err in exc.errors(include_url=False)
                # a draft's key is checked when it is saved, not on every preview
                if err["loc"][:1] != ("key",)
            ]
            or [{"path": "/key", "code": "invalid", "message": "not a usable key"}],
        ) from None


@router.post("/designer/{app}/reports/preview", response_model=None)
async def preview(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[Any, Body(description="The report as the builder holds it")],
) -> JSONResponse:
    """Run the report being edited with the caller's grants: its result (as ``POST
    /api/reports/{app}`` answers it), its chart (SVG) and its table (HTML), in one run."""
    lang = request_locale(request)
    report = _candidate(body)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        problems = [
            (pointer.removeprefix("/reports/0"), code, message)
            for pointer, code, message in report_problems([report], [], installed.forms)
        ]
        if problems:
            raise Unprocessable(
                f"The report has {len(problems)} problem(s).",
                errors=[
                    {"path": pointer, "code": code, "message": message}
                    for pointer, code, message in problems
                ],
            )
        spec = report.pivot()
        chart = report.chart
        previous = None
        windows = None
        await service.zone_of(installed)
        if chart is not None and chart.type == "kpi" and chart.period_field:
            # as a saved KPI runs (ReportService.run_saved): this period so far against
            # the same days of the previous one
            windows = service.periods(installed, spec, chart)
            result = await service.run(
                installed, with_filter(spec, windows.current_filter, flat=True), locale=lang
            )
            earlier = await service.run(
                installed, with_filter(spec, windows.previous_filter, flat=True)
            )
            previous = total_of(earlier, chart.measure or spec.measures[0].key)
        else:
            result = await service.run(installed, spec, locale=lang)
    label = label_text(report.label, lang) if report.label else ""
    ran = Ran(None, label, spec, result, chart, previous, windows)
    text = chart_text(lang)
    return JSONResponse(
        {
            "result": result.model_dump(mode="json", exclude=NO_DRILL),
            "previous": previous,
            "svg": svg_of(ran, locale=lang),
            "table": to_html(result, caption=label, total=text.total, text=text),
        }
    )
