"""A pivot result as CSV, as an HTML table, and as the categories and series of a chart.

Pure functions of a :class:`~.result.PivotResult`. CSV is UTF-8 with a byte-order mark, so
that spreadsheet programs read Chinese labels correctly. The HTML table is escaped, uses
``<th scope>`` headers for screen readers, and — when the result was built with drill-downs
(``reshape(..., drill=True)``) — carries each cell's drill-down filter in a ``data-drill``
attribute (JSON) for the page to turn into a link to the matching records.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from html import escape
from typing import Any

from formloom.engines.reports.cells import cell_text
from formloom.engines.reports.charts import ChartData, ChartText, Series, number
from formloom.engines.reports.result import Cell, DrillDown, Header, PivotResult

__all__ = ["chart_data", "to_csv", "to_html", "value_of"]

BOM = "\ufeff"


def _label(header: Header) -> str:
    return " / ".join(header.labels) if header.labels else ""


def value_of(cell: Cell | None, measure: str) -> Any:
    return None if cell is None else cell.values.get(measure)


def _column_titles(result: PivotResult, total: str) -> list[tuple[str, str, Callable[[int], Any]]]:
    """(column label, measure, accessor of a row's cell) for every output column."""
    titles: list[tuple[str, str, Callable[[int], Any]]] = []
    many = len(result.measures) > 1
    for c, column in enumerate(result.columns):
        for measure in result.measures:
            label = _label(column) or total
            if column.subtotal:
                label = f"{label} ({total})"
            if many:
                label = f"{label} · {measure}" if _label(column) else measure
            titles.append((label, measure, _cell_of(result, c)))
    if result.row_totals is not None and result.columns and _label(result.columns[0]):
        for measure in result.measures:
            label = f"{total} · {measure}" if many else total
            titles.append((label, measure, lambda r: result.row_totals[r]))  # type: ignore[index]
    return titles


def _cell_of(result: PivotResult, column: int) -> Callable[[int], Cell | None]:
    def get(row: int) -> Cell | None:
        return result.cells[row][column]

    return get


def to_csv(result: PivotResult, *, total: str = "Total") -> bytes:
    """The matrix as CSV: one header line (row dimensions, then a column per column header
    and measure), one line per row header, and a total line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    titles = _column_titles(result, total)
    writer.writerow([cell_text(name) for name in (*result.row_dimensions, *[t[0] for t in titles])])
    width = max(len(result.row_dimensions), 1)
    for r, row in enumerate(result.rows):
        labels = list(row.labels) + [""] * (width - len(row.labels))
        if row.subtotal:
            labels[len(row.labels) - 1] = f"{labels[len(row.labels) - 1]} ({total})"
        writer.writerow(
            [*map(cell_text, labels[:width]),
             *[_csv_value(value_of(get(r), m)) for _, m, get in titles]]
        )  # fmt: skip
    if result.column_totals is not None:
        labels = [total] + [""] * (width - 1)
        values = [
            _csv_value(value_of(_total_cell(result, i), m)) for i, (_, m, _) in enumerate(titles)
        ]
        writer.writerow([*map(cell_text, labels), *values])
    return (BOM + out.getvalue()).encode("utf-8")


def _total_cell(result: PivotResult, index: int) -> Cell | None:
    """The total line's cell under output column ``index``."""
    columns = len(result.columns) * len(result.measures)
    if index < columns and result.column_totals is not None:
        return result.column_totals[index // len(result.measures)]
    return result.grand_total


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str):  # a min / max of a text field
        return cell_text(value)
    return value


def to_html(
    result: PivotResult,
    *,
    caption: str = "",
    total: str = "Total",
    text: ChartText = ChartText(),
    link: Callable[[DrillDown], str] | None = None,
) -> str:
    """An accessible, escaped ``<table>``; each value cell carries its drill-down filter,
    and with ``link`` its value opens the records behind it."""
    titles = _column_titles(result, total)
    columns = len(result.columns) * len(result.measures)
    parts = ['<table class="fl-pivot">']
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append("<thead><tr>")
    for name in result.row_dimensions or [""]:
        parts.append(f'<th scope="col">{escape(name)}</th>')
    for label, _, _ in titles:
        parts.append(f'<th scope="col">{escape(label)}</th>')
    parts.append("</tr></thead><tbody>")
    for r, row in enumerate(result.rows):
        css = ' class="subtotal"' if row.subtotal else (' class="other"' if row.other else "")
        parts.append(f"<tr{css}>")
        labels = row.labels or [""]
        for label in labels:
            parts.append(f'<th scope="row">{escape(label)}</th>')
        for _ in range(max(len(result.row_dimensions), 1) - len(labels)):
            parts.append("<td></td>")
        for i, (_, measure, get) in enumerate(titles):
            cell = get(r)
            parts.append(_td(cell, measure, text, i >= columns, link))
        parts.append("</tr>")
    parts.append("</tbody>")
    if result.column_totals is not None:
        parts.append('<tfoot><tr class="total">')
        parts.append(f'<th scope="row">{escape(total)}</th>')
        for _ in range(max(len(result.row_dimensions), 1) - 1):
            parts.append("<td></td>")
        for i, (_, measure, _get) in enumerate(titles):
            parts.append(_td(_total_cell(result, i), measure, text, True, link))
        parts.append("</tr></tfoot>")
    parts.append("</table>")
    return "".join(parts)


def _td(
    cell: Cell | None,
    measure: str,
    text: ChartText,
    total: bool,
    link: Callable[[DrillDown], str] | None = None,
) -> str:
    value = value_of(cell, measure)
    shown = escape(number(value, text) if isinstance(value, int | float) else str(value or "–"))
    if cell is None:
        return f"<td>{shown}</td>"
    css = ' class="total"' if total else ""
    if cell.drill_down is None:  # the result was built without drill-downs
        return f"<td{css}>{shown}</td>"
    drill = escape(json.dumps(cell.drill_down.model_dump(mode="json"), ensure_ascii=False))
    if link is not None and value not in (None, 0):
        shown = f'<a href="{escape(link(cell.drill_down))}">{shown}</a>'
    return f'<td{css} data-drill="{drill}">{shown}</td>'


def chart_data(result: PivotResult, measure: str, *, total: str = "Total") -> ChartData:
    """Categories are the row headers (subtotal rows left out); series are the column
    headers (subtotal columns left out), or one series named after the measure when there
    are no column dimensions."""
    rows = [(r, row) for r, row in enumerate(result.rows) if not row.subtotal]
    categories = [_label(row) or total for _, row in rows]
    series = []
    for c, column in enumerate(result.columns):
        if column.subtotal:
            continue
        values = [_number(value_of(result.cells[r][c], measure)) for r, _ in rows]
        series.append(Series(_label(column) or measure, values))
    return ChartData(categories, series)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
