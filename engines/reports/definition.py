"""Saved reports and dashboards, as an app definition holds them.

A report is a pivot spec (:class:`~formloom.engines.reports.PivotSpec`: source form, filter,
row and column dimensions, measures...) with a key, a label and how to draw it. A dashboard
is a grid of reports with shared filters (a date range, a department) applied to every
report whose form has the filtered field.

These are the report engine's own definitions (the app definition, ``formloom.engines.apps``,
lists them under ``reports`` and ``dashboards``); :func:`report_problems` checks them against
the app's forms, as :func:`~formloom.engines.reports.check` checks one pivot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.forms import FormSpec, Label
from formloom.engines.reports.charts import ChartType
from formloom.engines.reports.spec import PivotSpec, check

#: Record columns a report or a shared filter may use besides fields.
SYSTEM_FIELDS = frozenset({"created_at", "updated_at", "created_by", "updated_by"})


class ChartSpec(BaseModel):
    """How a report is drawn (SVG, on the server)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: ChartType = Field(
        description="bar, stacked_bar, line, pie, donut, funnel or kpi (one number compared "
        "with the previous period)."
    )
    measure: str | None = Field(
        default=None, description="Key of the measure drawn; the first measure when absent."
    )
    x_label: Label | None = Field(default=None, description="Label of the x axis.")
    y_label: Label | None = Field(default=None, description="Label of the y axis.")
    period_field: str | None = Field(
        default=None,
        description="kpi: the date/datetime field that places a record in a period.",
    )
    period: Literal["day", "week", "month", "quarter", "year"] = Field(
        default="month",
        description="kpi: the value is the current period's, compared with the previous one.",
    )


class ReportSpec(PivotSpec):
    """A saved report: a pivot spec with a key, a label and a chart."""

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Identifier of the report in the app."
    )
    label: Label = Field(description="Title of the report.")
    description: Label | None = Field(default=None, description="What the report shows.")
    chart: ChartSpec | None = Field(default=None, description="How to draw it (optional).")

    def pivot(self) -> PivotSpec:
        return PivotSpec.model_validate(
            self.model_dump(exclude={"key", "label", "description", "chart"}, mode="json")
        )


class DashboardFilter(BaseModel):
    """A filter every report of the dashboard shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Query parameter name.")
    label: Label | None = Field(default=None, description="Shown next to the control.")
    type: Literal["date_range", "select"] = Field(
        description="date_range: `<key>_from` and `<key>_to` (dates, the end excluded); "
        "select: one value."
    )
    field: str | dict[str, str] = Field(
        description="The field filtered: one key for every report's form, or form -> field. "
        "Reports whose form has no such field ignore the filter."
    )

    def field_of(self, form: str) -> str | None:
        if isinstance(self.field, str):
            return self.field
        return self.field.get(form)


class DashboardItem(BaseModel):
    """One tile of a dashboard: a report, its width, optionally drawn differently."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    report: str = Field(description="Key of a report of the app.")
    width: int = Field(default=6, ge=1, le=12, description="Columns of a 12-column grid.")
    chart: ChartSpec | None = Field(default=None, description="Overrides the report's chart.")


class DashboardSpec(BaseModel):
    """A grid of reports with shared filters."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Identifier.")
    label: Label = Field(description="Title of the dashboard.")
    description: Label | None = Field(default=None, description="What it is for.")
    filters: list[DashboardFilter] = Field(default_factory=list, description="Shared filters.")
    items: list[DashboardItem] = Field(min_length=1, description="The reports, in order.")


def report_problems(
    reports: list[ReportSpec], dashboards: list[DashboardSpec], forms: Mapping[str, FormSpec]
) -> list[tuple[str, str, str]]:
    """(pointer, code, message) of every problem of saved reports and dashboards."""
    problems: list[tuple[str, str, str]] = []
    keys = {report.key: report for report in reports}
    for index, report in enumerate(reports):
        base = f"/reports/{index}"
        problems += [
            (base + pointer, code, message)
            for pointer, code, message in check(report.pivot(), forms)
        ]
        if report.chart is not None:
            problems += _chart_problems(report.chart, report, f"{base}/chart", forms)
    for index, dashboard in enumerate(dashboards):
        base = f"/dashboards/{index}"
        for position, item in enumerate(dashboard.items):
            saved = keys.get(item.report)
            if saved is None:
                known = ", ".join(sorted(keys)) or "none"
                problems.append(
                    (
                        f"{base}/items/{position}/report",
                        "unknown_report",
                        f"'{item.report}' is not a report of this app (reports: {known})",
                    )
                )
            elif item.chart is not None:
                problems += _chart_problems(
                    item.chart, saved, f"{base}/items/{position}/chart", forms
                )
        for position, shared in enumerate(dashboard.filters):
            mapping = shared.field if isinstance(shared.field, dict) else {}
            for form_key, field in mapping.items():
                form = forms.get(form_key)
                if form is None or (form.field(field) is None and field not in SYSTEM_FIELDS):
                    problems.append(
                        (
                            f"{base}/filters/{position}/field/{form_key}",
                            "unknown_field",
                            f"'{field}' is not a field of form '{form_key}'",
                        )
                    )
    return problems


def _chart_problems(
    chart: ChartSpec, report: ReportSpec, pointer: str, forms: Mapping[str, FormSpec]
) -> list[tuple[str, str, str]]:
    problems = []
    measures = [m.key for m in report.measures]
    if chart.measure is not None and chart.measure not in measures:
        problems.append(
            (
                f"{pointer}/measure",
                "unknown_measure",
                f"'{chart.measure}' is not a measure of report '{report.key}' "
                f"({', '.join(measures)})",
            )
        )
    if chart.type == "kpi":
        form = forms.get(report.form)
        field = form.field(chart.period_field) if form and chart.period_field else None
        system = chart.period_field in ("created_at", "updated_at")
        if not system and (field is None or field.field_type not in ("date", "datetime")):
            problems.append(
                (
                    f"{pointer}/period_field",
                    "invalid_period_field",
                    "a kpi chart needs `period_field`: a date or datetime field of the "
                    "report's form (or created_at)",
                )
            )
    return problems
