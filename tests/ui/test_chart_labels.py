"""Chart labels on the dashboard (issue 17, item 12), in Chinese in a real browser: legend
entries sit side by side without running into each other or off the chart, and a label too
long for its place is shortened with "…" and keeps its whole text as its tooltip (an SVG
<title>). The charts are drawn on the server; dashboard.js measures and fits the labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP

#: Each chart's legend entries: [left, right] of each entry (square to end of text), in the
#: chart's own units, and the chart's width.
LEGENDS = """() => [...document.querySelectorAll('.chart svg.fl-chart')].map((svg) => ({
  width: svg.viewBox.baseVal.width,
  items: [...svg.querySelectorAll('g.legend-item')].map((item) => {
    const square = item.querySelector('rect').getBBox();
    const text = item.querySelector('text').getBBox();
    return [square.x, text.x + text.width];
  }),
}))"""

LONG = "星期一（上午普通门诊与下午专家门诊合并统计）"


@pytest.fixture
def tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
    yield page
    context.close()
    assert not errors, errors


def _open_dashboard(tab: Any, live_server: LiveServer) -> None:
    tab.goto(f"{live_server.url}/apps/{APP}/dashboards/manager")
    tab.wait_for_function("document.querySelectorAll('.chart svg.fl-chart').length > 3")
    tab.evaluate("document.fonts.ready")


def test_legends_fit_their_chart_in_chinese(tab: Any, live_server: LiveServer) -> None:
    _open_dashboard(tab, live_server)
    charts = tab.evaluate(LEGENDS)
    with_legend = [chart for chart in charts if len(chart["items"]) > 1]
    assert len(with_legend) >= 2  # channels by month, weekdays by hour, ...
    for chart in with_legend:
        items = chart["items"]
        for (_, right), (left, _) in zip(items, items[1:], strict=False):
            assert right < left, items  # no entry runs into the next
        assert items[-1][1] <= chart["width"], items  # nor off the chart
    # the weekdays' legend (seven entries) is whole: each reads 星期…
    texts = tab.evaluate(
        "[...document.querySelectorAll('g.legend-item text')].map((t) => t.textContent)"
    )
    assert "星期一" in texts and "星期日" in texts


def test_a_label_too_long_is_shortened_with_its_whole_text_as_tooltip(
    tab: Any, live_server: LiveServer
) -> None:
    _open_dashboard(tab, live_server)
    # a copy of the weekdays chart (seven legend entries), the first given a long name, fitted
    # by the page's own code; and a pie-style legend line running off the right edge
    result = tab.evaluate(
        """async (long) => {
          const { fitChart } = await import('/static/dashboard.js');
          const source = [...document.querySelectorAll('.chart svg.fl-chart')]
            .find((svg) => [...svg.querySelectorAll('g.legend-item text')]
              .some((text) => text.textContent === '星期二'));
          const svg = source.cloneNode(true);
          source.closest('.chart').append(svg);
          const first = svg.querySelector('g.legend-item text');
          first.textContent = long;
          const line = document.createElementNS('http://www.w3.org/2000/svg', 'text');
          line.setAttribute('x', '378');
          line.setAttribute('y', '120');
          line.textContent = long + ' — 12 (40.0%)';
          svg.append(line);
          fitChart(svg);
          const width = svg.viewBox.baseVal.width;
          const boxes = [...svg.querySelectorAll('g.legend-item')].map((item) => {
            const text = item.querySelector('text').getBBox();
            return [item.querySelector('rect').getBBox().x, text.x + text.width];
          });
          const lineBox = line.getBBox();
          return {
            width, boxes,
            shown: first.firstChild.textContent, tip: first.querySelector('title')?.textContent,
            others: [...svg.querySelectorAll('g.legend-item text')].slice(1)
              .map((t) => t.textContent),
            line: line.firstChild.textContent, lineTip: line.querySelector('title')?.textContent,
            lineRight: lineBox.x + lineBox.width,
          };
        }""",
        LONG,
    )
    assert result["shown"].endswith("…") and result["shown"].startswith("星期一")
    assert result["tip"] == LONG
    # the short entries keep their whole names (星期二 … 星期日); only the long one gave way
    assert all(text.startswith("星期") and "…" not in text for text in result["others"])
    boxes = result["boxes"]
    for (_, right), (left, _) in zip(boxes, boxes[1:], strict=False):
        assert right < left, boxes
    assert boxes[-1][1] <= result["width"]
    assert result["line"].endswith("…") and result["lineTip"] == LONG + " — 12 (40.0%)"
    assert result["lineRight"] <= result["width"]
