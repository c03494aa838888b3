"""Reports and dashboards over HTTP: saved or ad hoc, as JSON, CSV, an HTML table or SVG.

A report's cells carry their values only; a cell's coordinates are its row's and column's
header ``keys``, and ``.../drill`` turns them into the cell's drill-down (its filter and a
link to its records) on demand, under the caller's grants. ``?drill=inline`` puts one in
every cell instead (a dashboard's tiles always have them): on a pivot of thousands of cells
that is most of the endpoint's time (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.forms import label_text
from formloom.engines.reports import DrillDown
from formloom.engines.reports.definition import ChartSpec
from formloom.engines.reports.render import to_csv, to_html
from formloom.platform import jsonsafe
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
DrillQuery = Annotated[
    Literal["inline"] | None,
    Query(description="inline: every cell carries its drill-down (json, html); costly"),
]
#: The result's JSON without the cells' (absent) drill-downs.
NO_DRILL: Any = {
    "cells": {"__all__": {"__all__": {"drill_down"}}},
    "row_totals": {"__all__": {"drill_down"}},
    "column_totals": {"__all__": {"drill_down"}},
    "grand_total": {"drill_down"},
}


class DrillAnswer(DrillDown):
    """A cell's drill-down and the records page listing its records."""

    href: str = Field(description="The records page of the cell's records.")


class DrillRequest(BaseModel):
    """An ad hoc pivot's cell: the spec and the cell's coordinates."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(description="The pivot spec (docs/reports.md).")
    row: list[Any] = Field(default_factory=list, description="The row header's keys.")
    column: list[Any] = Field(default_factory=list, description="The column header's keys.")
    other: bool = Field(default=False, description="The top-N 'Other' row.")
    group_other: bool = Field(
        default=False,
        description="The row is its group's 'Other' (top_per_group): its last key is not read.",
    )


def records_href(app: str, drill: DrillDown) -> str:
    """The records page of a drill-down's records."""
    payload = json.dumps(drill.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"/apps/{app}/records/{drill.form}?drill={quote(payload, safe='')}"


def _answer(app: str, drill: DrillDown) -> DrillAnswer:
    return DrillAnswer(**drill.model_dump(), href=records_href(app, drill))


def _keys(name: str, raw: str | None) -> list[Any]:
    """A JSON array of header keys from the query string, or a 422 naming the parameter."""
    if raw is None or raw == "":
        return []
    try:
        keys = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        keys = None
    if (
        not isinstance(keys, list)
        or any(isinstance(k, dict | list) for k in keys)
        or jsonsafe.problems(keys, bounded_ints=True)
    ):
        raise Unprocessable(
            f"'{name}' must be a JSON array of the header's keys.",
            errors=[
                {
                    "in": "query",
                    "parameter": name,
                    "code": "invalid",
                    "message": "a JSON array of keys (text, numbers, true/false or null)",
                }
            ],
        )
    return keys


def _present(ran: Ran, fmt: Format, app: str, locale: str = "en", drill: bool = False) -> Response:
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
    head: dict[str, Any] = {
        "key": ran.key,
        "label": ran.label,
        "chart": ran.chart.model_dump(exclude_none=True) if ran.chart else None,
    }
    if ran.kpi_previous is not None:
        head["previous"] = ran.kpi_previous
    # the result (thousands of cells) written by pydantic's serializer straight to JSON,
    # without the Python dicts and lists a model_dump for json.dumps builds first
    result = ran.result.model_dump_json(exclude=None if drill else NO_DRILL)
    opening = json.dumps(head, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(f'{opening[:-1]},"result":{result}}}'.encode(), media_type="application/json")


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
    drill: DrillQuery = None,
) -> Response:
    """Run a saved report with the caller's permissions, labelled in the caller's locale.
    Cells carry no drill-down unless ``drill=inline``: see ``.../drill``."""
    language = _locale(request, locale)
    inline = drill == "inline" and format in ("json", "html")
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        _, saved = service.saved(installed, report)
        override = _chart_override(saved.chart, chart)
        ran = await service.run_saved(
            installed, report, chart=override, locale=language, drill=inline
        )
    return _present(ran, format, app, language, inline)


@router.get("/reports/{app}/{report}/drill", response_model=DrillAnswer)
async def drill_saved(
    app: str,
    report: str,
    p: PlatformDep,
    who: PrincipalDep,
    row: Annotated[str | None, Query(description='The row header\'s keys, JSON: ["a", 3]')] = None,
    column: Annotated[str | None, Query(description="The column header's keys, JSON")] = None,
    other: Annotated[bool, Query(description="The top-N 'Other' row")] = False,
    group_other: Annotated[
        bool, Query(description="The row is its group's 'Other' (top_per_group)")
    ] = False,
) -> DrillAnswer:
    """The drill-down of one cell of a saved report — the filter selecting the records it
    counts, and the records page listing them — from the cell's coordinates, with the
    caller's grants (a spec the caller may not run has none)."""
    rows, columns = _keys("row", row), _keys("column", column)
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        index, saved = service.saved(installed, report)
        found = await service.drill(
            installed,
            saved.pivot(),
            rows,
            columns,
            other=other,
            group_other=group_other,
            prefix=f"/reports/{index}",
        )
    return _answer(app, found)


@router.post("/reports/{app}/drill", response_model=DrillAnswer)
async def drill_adhoc(
    app: str, body: DrillRequest, p: PlatformDep, who: PrincipalDep
) -> DrillAnswer:
    """The drill-down of one cell of an ad hoc pivot (``spec``) from its coordinates."""
    spec = parse_spec(body.spec)
    for name, keys in (("row", body.row), ("column", body.column)):
        problems = jsonsafe.problems(keys, f"/{name}", bounded_ints=True)
        if problems or any(isinstance(k, dict | list) for k in keys):
            pointer, message = problems[0] if problems else (f"/{name}", "must hold plain values")
            raise Unprocessable(
                "The cell's coordinates cannot be used.",
                errors=[{"path": pointer, "code": "invalid_key", "message": message}],
            )
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        found = await service.drill(
            installed,
            spec,
            body.row,
            body.column,
            other=body.other,
            group_other=body.group_other,
            prefix="/spec",
        )
    return _answer(app, found)


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
    drill: DrillQuery = None,
) -> Response:
    """Run a pivot spec posted in the body (errors point into it), labelled in the caller's
    locale. Cells carry no drill-down unless ``drill=inline``: see ``.../drill``."""
    spec = parse_spec(body)
    language = _locale(request, locale)
    inline = drill == "inline" and format in ("json", "html")
    async with p.db.transaction(write=False) as session:
        service = report_service(p, session, who)
        installed = await service.app(app)
        result = await service.run(installed, spec, locale=language, drill=inline)
    ran = Ran(None, "", spec, result, _chart_override(None, chart))
    return _present(ran, format, app, language, inline)


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
