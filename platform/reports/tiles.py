"""How a dashboard page presents its tiles and filters, beyond the charts themselves.

Filters offer choices, never internal codes: a select filter lists its field's options in
the reader's language, a filter on a link to another form (a branch) a picker of that
form's records by title; and a tile that a filter asked for does not narrow says so.

A KPI tile says what it compares, in words ("1 Dec – 3 Dec vs 1 Nov – 3 Nov (8)"), with the
change as an arrow and a percentage under the number. The change is drawn in a neutral
colour: a rise is good news for new patients and bad news for complaints, and a report
does not say which way is better (its chart has no such setting yet), so the page does not
colour it as good or bad. A change under ``SMALL_CHANGE`` per cent reads "about the same"
(≈) rather than as a rise or a fall.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from formloom.engines.forms import FormSpec, label_text
from formloom.engines.forms.fields import MultiselectField, RelationField, SelectField
from formloom.engines.forms.record import title_field
from formloom.engines.reports.charts import number
from formloom.engines.reports.definition import SYSTEM_FIELDS, DashboardFilter, DashboardSpec
from formloom.platform.apps.service import InstalledApp
from formloom.platform.reports import periods
from formloom.platform.reports.service import Ran, chart_text, total_of

#: Changes smaller than this (in per cent) are shown as about the same.
SMALL_CHANGE = 5.0


def kpi_comparison(ran: Ran, locale: str) -> dict[str, Any] | None:
    """What a KPI tile says under its number, or None for other tiles."""
    if ran.chart is None or ran.chart.type != "kpi" or ran.kpi_windows is None:
        return None
    measure = ran.chart.measure or ran.spec.measures[0].key
    value = total_of(ran.result, measure)
    previous = ran.kpi_previous
    text = chart_text(locale)
    change = None
    if value is not None and previous not in (None, 0):
        assert previous is not None
        change = 100 * (value - previous) / abs(previous)
    if change is None:
        delta, tone = "", "none"
    elif abs(change) < SMALL_CHANGE:
        delta, tone = f"≈ {abs(change):.1f}%", "flat"
    else:
        rise = change > 0
        delta, tone = f"{'▲' if rise else '▼'} {abs(change):.1f}%", "up" if rise else "down"
    return {
        "delta": delta,
        "tone": tone,
        "words": periods.compared(ran.kpi_windows, locale),
        "previous": number(previous, text),
    }


def kpi_alone(ran: Ran) -> Ran:
    """The KPI without its comparison, for a chart whose tile says the comparison itself."""
    return replace(ran, kpi_previous=None)


# -- the shared filters ------------------------------------------------------------------------


def applies(shared: DashboardFilter, form: FormSpec) -> bool:
    """Whether ``shared`` narrows a report of ``form`` (the service's own test)."""
    field = shared.field_of(form.key)
    return field is not None and (form.field(field) is not None or field in SYSTEM_FIELDS)


def _forms_of(installed: InstalledApp, board: DashboardSpec) -> list[FormSpec]:
    """The forms of the board's reports, in the order of its tiles, each once."""
    keys: dict[str, None] = {}
    for item in board.items:
        report = next((r for r in installed.spec.reports if r.key == item.report), None)
        if report is not None:
            keys[report.form] = None
    return [installed.forms[key] for key in keys if key in installed.forms]


def filter_controls(
    installed: InstalledApp,
    board: DashboardSpec,
    lang: str,
    hidden: Callable[[str], frozenset[str]],
) -> list[dict[str, Any]]:
    """Each shared filter as the page offers it: a date range; a choice among the field's
    options (labels in ``lang``, the union over the forms it applies to); a record picker
    for a link to another form (searched by title); free text for anything else. A field
    hidden from the caller on a form offers nothing from that form, and a filter whose field
    the caller sees nowhere is not offered."""
    out: list[dict[str, Any]] = []
    forms = _forms_of(installed, board)
    for shared in board.filters:
        control: dict[str, Any] = {
            "key": shared.key,
            "type": shared.type,
            "label": label_text(shared.label, lang) if shared.label else shared.key,
            "kind": "date_range" if shared.type == "date_range" else "text",
        }
        if shared.type == "select":
            options: dict[str, str] = {}
            found = visible = 0
            for form in forms:
                key = shared.field_of(form.key)
                field = form.field(key) if key else None
                if field is None:
                    continue
                found += 1
                if key in hidden(form.key):
                    continue
                visible += 1
                if isinstance(field, SelectField | MultiselectField):
                    for option in field.options:
                        options.setdefault(
                            option.value, label_text(option.label, lang) or option.value
                        )
                elif isinstance(field, RelationField) and "target" not in control:
                    control["target"] = field.target
            if found and not visible:
                continue  # hidden from the caller wherever it applies: not offered at all
            if options:
                control.update(kind="options", options=list(options.items()))
            elif "target" in control:
                target = installed.forms.get(control["target"])
                title = title_field(target) if target is not None else None
                control.update(
                    kind="relation",
                    target_info={
                        "label": label_text(target.label, lang) if target else control["target"],
                        "title_field": title.key if title is not None else None,
                        "title_type": title.field_type if title is not None else None,
                    },
                )
        out.append(control)
    return out


def active_filters(board: DashboardSpec, values: Mapping[str, str]) -> list[DashboardFilter]:
    """The shared filters the page was asked for with a value."""
    return [
        shared
        for shared in board.filters
        if (
            values.get(f"{shared.key}_from") or values.get(f"{shared.key}_to")
            if shared.type == "date_range"
            else values.get(shared.key)
        )
    ]


def not_applied(
    installed: InstalledApp,
    board: DashboardSpec,
    report: str,
    values: Mapping[str, str],
    lang: str,
) -> list[str]:
    """Labels of the filters asked for that a tile of ``report`` does not narrow."""
    spec = next((r for r in installed.spec.reports if r.key == report), None)
    if spec is None or spec.form not in installed.forms:
        return []
    form = installed.forms[spec.form]
    return [
        label_text(shared.label, lang) if shared.label else shared.key
        for shared in active_filters(board, values)
        if not applies(shared, form)
    ]
