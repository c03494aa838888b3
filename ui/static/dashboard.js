// The dashboard page: a shared filter on a link to another form (a branch) becomes the
// forms' search-as-you-type record picker, which offers the records by title and keeps the
// chosen id in the filter's hidden input, so the filter form still submits `branch=<id>`.
// Select filters are plain <select>s of the field's options, rendered by the server.

import { relationPicker } from "/static/form.js";

const page = JSON.parse(document.getElementById("dashboard-data").textContent);

for (const holder of document.querySelectorAll("[data-filter-relation]")) {
  const key = holder.dataset.key;
  const target = holder.dataset.target;
  const hidden = holder.querySelector(`input[type=hidden][name="${CSS.escape(key)}"]`);
  const picker = relationPicker({
    app: { key: page.app, forms: { [target]: JSON.parse(holder.dataset.info) } },
    target,
    name: key,
    id: `filter-${key}-search`,
    value: hidden.value || null,
    title: holder.dataset.title || null,
  });
  hidden.replaceWith(picker.element);
}

// -- chart labels that do not fit -------------------------------------------------------------
// The server draws the charts (engines/reports/charts.py) without knowing how wide a label's
// glyphs are — a Chinese character is about twice a Latin letter — so long legend entries ran
// into each other and pie legends ran off the chart. Here the browser measures them: the
// legend's entries are laid out by their real widths and shortened with "…" only when they do
// not all fit (the longest first); any label shortened keeps its whole text in a <title>,
// which is its tooltip and what a screen reader reads.

const SVG = "http://www.w3.org/2000/svg";
const SWATCH = 14; // a legend entry's colour square and the space after it
const GAP = 10; // between legend entries
const EDGE = 6; // kept free at the chart's edge and between neighbouring labels
const ROTATED = 96; // a slanted category label: as long as the space under the plot allows

/** Shorten `text` (an SVG <text>) to `room` user units with "…"; true when it was. */
function shorten(text, room) {
  const full = text.dataset.full ?? text.textContent;
  text.textContent = full;
  if (text.getComputedTextLength() <= room) return false;
  let low = 0;
  let high = full.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    text.textContent = `${full.slice(0, mid)}…`;
    if (text.getComputedTextLength() <= room) low = mid;
    else high = mid - 1;
  }
  text.textContent = `${full.slice(0, low).trimEnd()}…`;
  text.dataset.full = full;
  const tip = document.createElementNS(SVG, "title");
  tip.textContent = full;
  text.append(tip);
  return true;
}

/** The widest all legend entries may be so that they fit in `room` together: the longest
 * are cut down to a common width, the short ones keep theirs. */
export function legendCap(widths, room) {
  const total = widths.reduce((sum, width) => sum + width, 0);
  if (total <= room) return Math.max(...widths);
  const sorted = [...widths].sort((a, b) => a - b);
  let left = room;
  for (let i = 0; i < sorted.length; i += 1) {
    const share = left / (sorted.length - i);
    if (sorted[i] > share) return share;
    left -= sorted[i];
  }
  return sorted[sorted.length - 1];
}

function fitLegend(svg, width) {
  const items = [...svg.querySelectorAll("g.legend-item")];
  if (!items.length) return;
  const texts = items.map((item) => item.querySelector("text"));
  const squares = items.map((item) => item.querySelector("rect"));
  const start = Number(squares[0].getAttribute("x"));
  for (const text of texts) if (text.dataset.full) text.textContent = text.dataset.full;
  const room = width - EDGE - start - items.length * (SWATCH + GAP) + GAP;
  const cap = legendCap(texts.map((text) => text.getComputedTextLength()), room);
  let x = start;
  items.forEach((item, i) => {
    shorten(texts[i], cap);
    squares[i].setAttribute("x", String(x));
    texts[i].setAttribute("x", String(x + SWATCH));
    x += SWATCH + texts[i].getComputedTextLength() + GAP;
  });
}

function fitLabels(svg, width) {
  const rows = new Map(); // centred labels on one line (categories under the bars): y -> texts
  for (const text of svg.querySelectorAll("text")) {
    if (text.closest(".legend-item") || text.classList.contains("axis-label")) continue;
    const anchor = text.getAttribute("text-anchor") || "start";
    const x = Number(text.getAttribute("x"));
    if (text.hasAttribute("transform")) shorten(text, ROTATED);
    else if (anchor === "start") shorten(text, width - EDGE - x);
    else if (anchor === "middle") {
      const y = text.getAttribute("y");
      if (!rows.has(y)) rows.set(y, []);
      rows.get(y).push(text);
    }
  }
  for (const row of rows.values()) {
    const xs = row.map((text) => Number(text.getAttribute("x"))).sort((a, b) => a - b);
    const spacing = Math.min(...xs.slice(1).map((x, i) => x - xs[i]));
    for (const text of row) {
      const x = Number(text.getAttribute("x"));
      const alone = 2 * Math.min(x, width - x); // a title: as wide as the chart allows
      shorten(text, (row.length > 1 ? Math.min(spacing, alone) : alone) - EDGE);
    }
  }
}

/** Fit the labels of one server-drawn chart to its width (safe to call again). */
export function fitChart(svg) {
  const width = svg.viewBox?.baseVal?.width || Number(svg.getAttribute("width")) || 0;
  if (!width || !svg.getBoundingClientRect().width) return; // not shown: nothing to measure
  fitLegend(svg, width);
  fitLabels(svg, width);
}

function fitCharts() {
  for (const svg of document.querySelectorAll(".chart svg.fl-chart")) fitChart(svg);
}
if (document.fonts?.status === "loaded") fitCharts();
else document.fonts.ready.then(fitCharts);
