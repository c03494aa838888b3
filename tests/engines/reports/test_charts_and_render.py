"""SVG charts and the CSV / HTML renderings of a pivot result (pure, no database)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from formloom.engines.reports.charts import (
    CHART_TYPES,
    Chart,
    ChartData,
    ChartText,
    Series,
    number,
    render_svg,
)
from formloom.engines.reports.render import chart_data, to_csv, to_html
from formloom.engines.reports.result import Cell, DrillDown, Header, PivotResult

SVG = "{http://www.w3.org/2000/svg}"
DATA = ChartData(
    ["Jan", "Feb", "Mar <&>"],
    [Series("Walk-in", [3, 5, None]), Series("Online", [1, 2.5, 7])],
)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


@pytest.mark.parametrize("kind", CHART_TYPES)
def test_every_chart_is_valid_accessible_svg(kind: str) -> None:
    svg = render_svg(
        Chart(kind, "New patients", DATA, x_label="Month", y_label="Patients", previous=4)
    )  # type: ignore[arg-type]
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-title chart-desc"
    assert root.find(f"{SVG}title").text == "New patients"
    assert root.find(f"{SVG}desc").text
    assert "<&>" not in svg  # labels are escaped


def test_every_value_has_a_hover_title() -> None:
    root = parse(render_svg(Chart("bar", "t", DATA)))
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == 5  # one value is missing
    titles = [bar.find(f"{SVG}title").text for bar in bars]
    assert "Walk-in · Feb: 5" in titles and "Online · Mar <&>: 7" in titles


def test_bar_heights_are_proportional_and_negative_values_hang_below_zero() -> None:
    data = ChartData(["a", "b", "c"], [Series("v", [10, 20, -5])])
    root = parse(render_svg(Chart("bar", "t", data)))
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.01)
    assert heights[2] == pytest.approx(heights[0] / 2, rel=0.01)
    zero = float(root.find(f".//{SVG}line[@class='zero']").get("y1"))
    assert float(bars[2].get("y")) == pytest.approx(zero, abs=0.2)  # starts at zero, goes down
    assert float(bars[0].get("y")) + heights[0] == pytest.approx(zero, abs=0.2)


def test_stacked_bars_pile_up() -> None:
    root = parse(render_svg(Chart("stacked_bar", "t", DATA)))
    first = [
        b for b in root.findall(f".//{SVG}rect[@class='bar']") if b.get("data-category") == "0"
    ]
    lower, upper = sorted(first, key=lambda b: -float(b.get("y")))
    assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(
        float(lower.get("y")), abs=0.2
    )


def test_pie_shares_and_donut_total() -> None:
    data = ChartData(["a", "b"], [Series("n", [1, 3])])
    svg = render_svg(Chart("donut", "t", data))
    assert "(25.0%)" in svg and "(75.0%)" in svg
    assert ">4</text>" in svg  # the total in the hole


def test_kpi_compares_with_the_previous_period() -> None:
    data = ChartData(["this month"], [Series("n", [120])])
    up = render_svg(Chart("kpi", "New patients", data, previous=100))
    assert "▲ 20.0%" in up and ">120<" in up
    down = render_svg(Chart("kpi", "New patients", data, previous=150))
    assert "▼ 20.0%" in down


def test_empty_data_says_so_in_the_readers_language() -> None:
    svg = render_svg(Chart("bar", "t", ChartData([], []), text=ChartText(no_data="无数据")))
    assert "无数据" in svg
    parse(svg)


def test_numbers_are_formatted_for_the_locale() -> None:
    assert number(1234567.891) == "1,234,567.89"
    assert number(3.0) == "3"
    assert number(None) == "–"
    assert number(1234.5, ChartText(decimal_mark=",", thousands=".")) == "1.234,5"


# -- CSV and HTML --------------------------------------------------------------------------


def drill(value: str) -> DrillDown:
    return DrillDown(form="visit", filter={"==": [{"var": "department"}, value]})


def cell(n: int, value: str = "x") -> Cell:
    return Cell(values={"n": n}, drill_down=drill(value))


RESULT = PivotResult(
    row_dimensions=["科室"],
    column_dimensions=["Month"],
    measures=["n"],
    rows=[Header(keys=["surgery"], labels=["外科"]), Header(keys=["dental"], labels=["Dental"])],
    columns=[
        Header(keys=["2026-10"], labels=["2026-10"]),
        Header(keys=["2026-11"], labels=["2026-11"]),
    ],
    cells=[[cell(1, "surgery"), cell(2, "surgery")], [cell(3, "dental"), cell(4, "dental")]],
    row_totals=[cell(3), cell(7)],
    column_totals=[cell(4), cell(6)],
    grand_total=cell(10),
)


def test_csv_has_a_bom_headers_rows_and_totals() -> None:
    raw = to_csv(RESULT)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["科室", "2026-10", "2026-11", "Total"],
        ["外科", "1", "2", "3"],
        ["Dental", "3", "4", "7"],
        ["Total", "4", "6", "10"],
    ]


def test_html_table_is_escaped_with_scoped_headers_and_drill_downs() -> None:
    html = to_html(RESULT, caption="Visits <by> department")
    assert "<caption>Visits &lt;by&gt; department</caption>" in html
    assert '<th scope="row">外科</th>' in html
    root = ET.fromstring(html)
    first = root.find("./tbody/tr/td")
    assert json.loads(first.get("data-drill"))["filter"] == {
        "==": [{"var": "department"}, "surgery"]
    }
    assert root.find("./tfoot/tr/td[last()]").text == "10"


def test_chart_data_takes_rows_as_categories_and_columns_as_series() -> None:
    data = chart_data(RESULT, "n")
    assert data.categories == ["外科", "Dental"]
    assert [(s.name, s.values) for s in data.series] == [
        ("2026-10", [1.0, 3.0]),
        ("2026-11", [2.0, 4.0]),
    ]
