"""Reports and dashboards over HTTP: saved or ad hoc, as JSON, CSV, an HTML table or SVG."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from formloom.engines.forms import label_text
from formloom.engines.reports.definition import ChartSpec
from formloom.engines.reports.render import to_csv, to_html
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import Forbidden, Unprocessable
from formloom.platform.reports.service import (
    Ran,
    ReportService,
    chart_text,
    parse_spec,
    svg_of,
)

router = APIRouter(prefix="/api", tags=["reports"])

Format = Literal["json", "csv", "html", "svg"]
FormatQuery = Annotated[Format, Query(description="json (default), csv, html or svg")]
ChartQuery = Annotated[
    str | None, Query(description="svg: chart type overriding the report's (bar, line, ...)")
]


def report_service(p: Platform, session: Any, who: Any) -> ReportService:
    """The report service for one caller, configured from the platform's settings."""
    return ReportService(
        session,
        p.catalog,
        principal=who,
        now=p.clock.now(),
        time_zone=p.settings.timezone,
        max_cells=p.settings.report_max_cells,
    )


def _locale(request: Request, locale: str | None) -> str:
    """`?locale=` or the browser's preference: en or zh-CN (labels fall back to en)."""
    if locale in ("en", "zh-CN"):
        return locale
    accepted = request.headers.get("accept-language", "").lower()
    return "zh-CN" if accepted.startswith("zh") else "en"


LocaleQuery = Annotated[str | None, Query(description="en or zh-CN (default: Accept-Language)")]


def _present(ran: Ran, fmt: Format, app: str, locale: str = "en") -> Response:
    text = chart_text(locale)
    if fmt == "csv":
        name = ran.key or "report"
        return Response(
            to_csv(ran.result, total=text.total),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{app}-{name}.csv"'},
        )
    if fmt == "html":
        return Response(
            to_html(ran.result, caption=ran.label), media_type="text/html; charset=utf-8"
        )
    if fmt == "svg":
        return Response(svg_of(ran, locale=locale), media_type="image/svg+xml")
    body: dict[str, Any] = {
        "key": ran.key,
        "label": ran.label,
        "chart": ran.chart.model_dump(exclude_none=True) if ran.chart else None,
        "result": ran.result.model_dump(mode="json"),
    }
    if ran.kpi_previous is not None:
        body["previous"] = ran.kpi_previous
    return JSONResponse(body)


def _chart_override(ran_chart: ChartSpec | None, chart: str | None) -> ChartSpec | None:
    if chart is None:
        return None
    try:
        base = ran_chart.model_dump() if ran_chart else {}
        return ChartSpec.model_validate({**base, "type": chart})
    except ValueError:
        raise Unprocessable(
            f"Unknown chart type '{chart[:40]}'.",
            errors=[
                {
                    "in": "query",
                    "parameter": "chart",
                    "code": "enum",
                    "message": "unknown chart type",
                }
            ],
        ) from None


@router.get("/reports/{app}")
async def list_reports(app: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """The saved reports and dashboards of the app whose source forms the caller may read."""
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        readable = {
            form
            for form in installed.forms
            if service.records.access(installed, form).allows("read")
        }
    return {
        "reports": [
            {
                "key": r.key,
                "label": r.label,
                "form": r.form,
                "chart": r.chart.type if r.chart else None,
            }
            for r in installed.spec.reports
            if r.form in readable
        ],
        "dashboards": [
            {"key": d.key, "label": d.label, "reports": [i.report for i in d.items]}
            for d in installed.spec.dashboards
        ],
    }


@router.get("/reports/{app}/{report}")
async def run_report(
    app: str,
    report: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    format: FormatQuery = "json",
    chart: ChartQuery = None,
    locale: LocaleQuery = None,
) -> Response:
    """Run a saved report with the caller's permissions, labelled in the caller's locale."""
    language = _locale(request, locale)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        _, saved = service.saved(installed, report)
        override = _chart_override(saved.chart, chart)
        ran = await service.run_saved(installed, report, chart=override, locale=language)
    return _present(ran, format, app, language)


@router.post("/reports/{app}")
async def run_adhoc(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[Any, Body(description="A pivot spec (docs/reports.md)")],
    format: FormatQuery = "json",
    chart: ChartQuery = None,
    locale: LocaleQuery = None,
) -> Response:
    """Run a pivot spec posted in the body (errors point into it), labelled in the caller's
    locale."""
    spec = parse_spec(body)
    language = _locale(request, locale)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        result = await service.run(installed, spec, locale=language)
    ran = Ran(None, "", spec, result, _chart_override(None, chart))
    return _present(ran, format, app, language)


@router.get("/dashboards/{app}/{dashboard}")
async def run_dashboard(
    app: str, dashboard: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> dict[str, Any]:
    """Every report of a dashboard, with the shared filters from the query string
    (`<key>=value` for a select, `<key>_from` / `<key>_to` for a date range). A report the
    caller may not run is reported in its tile, not as a failed page."""
    values = dict(request.query_params)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        board, tiles = await service.dashboard(installed, dashboard, values)
    items = []
    for item, tile in zip(board.items, tiles, strict=True):
        if isinstance(tile, Unprocessable | Forbidden):
            items.append(
                {
                    "report": item.report,
                    "width": item.width,
                    "error": {"status": tile.status, "detail": tile.detail},
                }
            )
            continue
        items.append(
            {
                "report": item.report,
                "label": tile.label,
                "width": item.width,
                "result": tile.result.model_dump(mode="json"),
                "svg": svg_of(tile),
            }
        )
    return {
        "key": board.key,
        "label": label_text(board.label),
        "filters": [f.model_dump(exclude_none=True) for f in board.filters],
        "items": items,
    }
