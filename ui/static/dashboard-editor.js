// The dashboard editor (/designer/{app}/dashboards/{key}): reports added as tiles on a
// 12-column grid, dragged to reorder and resized by a handle (or, with a tile selected, moved
// with the arrows, resized with Shift+arrows, removed with Delete), a KPI tile's period, the
// shared filters wired per form to a field, and the save through the dashboard API's plan
// (docs/ui.md, "The dashboard editor"). The page's data (#dashboard-editor-data) holds the
// dashboard as written, the app's reports and, per form, the fields a filter may use.
//
// Invariants:
// - the dashboard is edited as the JSON it is saved as (dashboard-editor-model.js); every
//   control has `data-path`, the JSON pointer of what it edits, where a 422 is shown;
// - a change made with the mouse or keyboard is one undo step (text boxes: when left), and
//   every change to the tiles is said in words in the live region (#board-announce);
// - the tiles are drawn by the server as on the dashboard page, one request per report and
//   chart, kept for the page's life; nothing is written but by the Save button.

import { api, ApiError } from "/static/api.js";
import { el } from "/static/dom.js";
import { t, label as labelOf } from "/static/i18n.js";
import * as m from "/static/dashboard-editor-model.js";

const data = JSON.parse(document.getElementById("dashboard-editor-data").textContent);
const root = document.querySelector("[data-testid=dashboard-editor]");
const bodyNode = root.querySelector("[data-board-body]");
const statusNode = root.querySelector("[data-testid=board-status]");
const dirtyNode = root.querySelector("[data-testid=board-dirty]");
const problemsNode = root.querySelector("[data-testid=board-problems]");
const announceNode = root.querySelector("[data-testid=board-announce]");
const jsonNode = root.querySelector("[data-testid=board-json]");
const planDialog = root.querySelector("[data-testid=board-plan]");

const app = data.app;
const locales = app.locales;
const forms = data.forms;
const reports = data.reports;
const reportsByKey = Object.fromEntries(reports.map((r) => [r.key, r]));

const state = {
  isNew: data.dashboard === null,
  revision: data.revision,
  board: data.dashboard ? structuredClone(data.dashboard) : m.emptyBoard(locales),
  errors: new Map(), // JSON pointer -> message
};
state.board.items = state.board.items ?? [];
let current = JSON.stringify(state.board);
let savedText = state.isNew ? null : JSON.stringify(m.compact(state.board));
const past = [];
const future = [];

const PERIOD_NAMES = { day: "Day", week: "Week", month: "Month", quarter: "Quarter", year: "Year" };
const FILTER_NAMES = { date_range: "Period (date range)", select: "Choice (department, branch…)" };

// -- history --------------------------------------------------------------------------------

function checkpoint() {
  const now = JSON.stringify(state.board);
  if (now === current) return;
  past.push(current);
  future.length = 0;
  current = now;
  refreshChrome();
}

function restore(text) {
  current = text;
  state.board = JSON.parse(text);
  render();
}

function undo() {
  checkpoint();
  if (!past.length) return;
  future.push(current);
  restore(past.pop());
  announce(t("Undone."));
}

function redo() {
  if (!future.length) return;
  past.push(current);
  restore(future.pop());
  announce(t("Redone."));
}

function isDirty() {
  return JSON.stringify(m.compact(state.board)) !== savedText;
}

function refreshChrome() {
  dirtyNode.hidden = !isDirty();
  root.querySelector("[data-testid=board-undo]").disabled = !past.length && JSON.stringify(state.board) === current;
  root.querySelector("[data-testid=board-redo]").disabled = !future.length;
  jsonNode.textContent = JSON.stringify(m.compact(state.board), null, 2);
  root.querySelector("[data-board-title]").textContent = labelOf(state.board.label) || state.board.key || t("New dashboard");
}

/** Change the dashboard and draw it again (one undo step). */
function change(mutate) {
  mutate(state.board);
  checkpoint();
  render();
}

function announce(text) {
  announceNode.textContent = "";
  // a new text node each time, so the same words are read again
  window.requestAnimationFrame(() => (announceNode.textContent = text));
}

// -- controls -------------------------------------------------------------------------------

let uid = 0;
const nextId = () => `de-${++uid}`;

function errorAt(path) {
  const message = state.errors.get(path);
  return message ? el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message }) : null;
}

function row(text, control, path, hint) {
  const id = control.id || (control.id = nextId());
  return el(
    "div",
    { class: `re-row${path && state.errors.has(path) ? " invalid" : ""}` },
    el("label", { for: id, text }),
    control,
    hint ? el("span", { class: "muted small", text: hint }) : null,
    path ? errorAt(path) : null,
  );
}

function textBox(path, testid, { placeholder } = {}) {
  const value = m.getAt(state.board, path);
  const node = el("input", { type: "text", "data-path": path, "data-testid": testid, placeholder, "aria-invalid": state.errors.has(path) ? "true" : undefined });
  node.value = value ?? "";
  node.addEventListener("input", () => {
    m.setAt(state.board, path, node.value);
    refreshChrome();
  });
  node.addEventListener("change", checkpoint);
  return node;
}

function section(title, testid, ...children) {
  const id = nextId();
  return el("fieldset", { class: "re-section", "data-testid": testid, "aria-labelledby": id }, el("legend", { id, text: title }), ...children);
}

/** A label per app locale (or one box when the label is one text for every language). */
function labelBoxes(path, testid, name) {
  const value = m.getAt(state.board, path);
  const boxes =
    typeof value === "string"
      ? [row(name, textBox(path, testid), path)]
      : locales.map((locale) => {
          const inner = `${path}/${m.escapePart(locale)}`;
          return row(`${name} (${locale})`, textBox(inner, `${testid}-${locale}`), inner);
        });
  return el("div", { class: "locale-text", "data-path": path }, boxes, typeof value === "string" ? null : errorAt(path));
}

const reportLabel = (key) => reportsByKey[key]?.label ?? key;
const filterName = (filter) => labelOf(filter.label) || filter.key || t("(no key yet)");

// -- the dashboard's head -------------------------------------------------------------------

function head() {
  const parts = [];
  if (state.isNew) {
    parts.push(row(t("Key"), textBox("/key", "board-key", { placeholder: "manager" }), "/key", t("Lower-case letters, digits and _; it cannot change later.")));
  }
  if (state.board.label === undefined) state.board.label = Object.fromEntries(locales.map((l) => [l, ""]));
  parts.push(labelBoxes("/label", "board-label", t("Name")));
  return section(t("Dashboard"), "board-head", ...parts);
}

// -- tiles ----------------------------------------------------------------------------------

const tileCache = new Map(); // JSON [report, chart] -> {svg, compare, error} | Promise

function tileKey(item) {
  return JSON.stringify([item.report, item.chart ?? null]);
}

// The dashboard page fits a chart's labels to their measured widths (dashboard.js
// `fitChart`); the tiles here use the same code, once per drawing (the fitted markup is kept).
const fitter = import("/static/dashboard.js").then((page) => page.fitChart ?? null).catch(() => null);

function fit(chart, drawn) {
  fitter.then((fitChart) => {
    const svg = chart.querySelector("svg");
    if (!fitChart || !svg?.isConnected || drawn.fitted) return;
    fitChart(svg);
    drawn.fitted = chart.innerHTML;
  });
}

function fitShown() {
  for (const chart of root.querySelectorAll("[data-chart-key] > .chart")) {
    const drawn = tileCache.get(chart.parentNode.dataset.chartKey);
    if (drawn && !(drawn instanceof Promise) && !drawn.fitted) fit(chart, drawn);
  }
}

function fillChart(node, drawn) {
  node.replaceChildren();
  if (drawn.error) {
    node.append(el("p", { class: "error", text: drawn.error }));
    return;
  }
  const chart = el("div", { class: "chart" });
  chart.innerHTML = drawn.fitted ?? drawn.svg; // drawn by the server, as on the dashboard page
  node.append(chart);
  if (node.isConnected && !drawn.fitted) fit(chart, drawn);
  const compare = drawn.compare;
  if (compare) {
    node.append(
      el(
        "p",
        { class: `kpi-compare ${compare.tone}`, "data-testid": "kpi-compare" },
        compare.delta ? el("span", { class: "kpi-delta", text: compare.delta }) : null,
        compare.delta ? " " : null,
        el("span", { class: "kpi-words", text: `${compare.words} (${compare.previous})` }),
      ),
    );
  }
}

function drawChart(node, item) {
  const key = tileKey(item);
  node.dataset.chartKey = key;
  const known = tileCache.get(key);
  if (known && !(known instanceof Promise)) {
    fillChart(node, known);
    return;
  }
  node.append(el("p", { class: "muted small", text: t("Drawing…") }));
  if (known) return;
  const query = new URLSearchParams({ report: item.report });
  if (item.chart) query.set("chart", JSON.stringify(item.chart));
  const pending = api(`/designer/${encodeURIComponent(app.key)}/dashboards/-/tile?${query}`)
    .then(({ data: drawn }) => drawn)
    .catch((error) => ({ error: error.message }))
    .then((drawn) => {
      tileCache.set(key, drawn);
      for (const holder of root.querySelectorAll("[data-chart-key]")) {
        if (holder.dataset.chartKey === key) fillChart(holder, drawn);
      }
    });
  tileCache.set(key, pending);
}

function tileWords(item, index) {
  return t("{report}: width {width} of 12, tile {position} of {count}", {
    report: reportLabel(item.report),
    width: item.width ?? m.DEFAULT_WIDTH,
    position: index + 1,
    count: state.board.items.length,
  });
}

/** What the board's filters do to one tile: the ones narrowing it and the ones not. */
function filtersOn(item) {
  const form = reportsByKey[item.report]?.form;
  const on = [];
  const off = [];
  for (const filter of state.board.filters ?? []) {
    (m.applies(filter, form, forms[form]) ? on : off).push(filterName(filter));
  }
  return { on, off };
}

function kpiControls(item, index) {
  const report = reportsByKey[item.report];
  const chart = m.chartOf(item, report);
  if (chart?.type !== "kpi") return null;
  const base = `/items/${index}/chart`;
  const period = el(
    "select",
    { "data-path": `${base}/period`, "data-testid": `tile-${index}-period` },
    m.PERIODS.map((p) => el("option", { value: p, text: t(PERIOD_NAMES[p]), selected: p === (chart.period ?? "month") })),
  );
  period.addEventListener("change", () => change((board) => m.setKpi(board.items[index], report, { period: period.value })));
  const dates = forms[report.form]?.dates ?? [];
  const field = el(
    "select",
    { "data-path": `${base}/period_field`, "data-testid": `tile-${index}-period-field` },
    dates.map((d) => el("option", { value: d.key, text: `${d.label} (${d.key})`, selected: d.key === chart.period_field })),
  );
  field.addEventListener("change", () => change((board) => m.setKpi(board.items[index], report, { period_field: field.value })));
  return el(
    "div",
    { class: "tile-kpi" },
    row(t("Compared by"), period, `${base}/period`, t("This period so far against the same days of the previous one.")),
    row(t("Date that places a record"), field, `${base}/period_field`),
    item.chart ? el("p", { class: "muted small", "data-testid": `tile-${index}-own-chart`, text: t("This tile compares differently from its report.") }) : null,
  );
}

function tileNode(item, index) {
  const width = item.width ?? m.DEFAULT_WIDTH;
  const base = `/items/${index}`;
  const grip = el("span", { class: "tile-grip", "data-testid": `tile-${index}-move`, title: t("Drag to move the tile"), "aria-hidden": "true", text: "⠿" });
  grip.addEventListener("pointerdown", (event) => startMove(event, index));
  const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove the tile {report}", { report: reportLabel(item.report) }), "data-testid": `tile-${index}-remove`, text: "×" });
  remove.addEventListener("click", () => removeTile(index));
  const handle = el("span", { class: "tile-resize", "data-testid": `tile-${index}-resize`, title: t("Drag to change the width"), "aria-hidden": "true" });
  handle.addEventListener("pointerdown", (event) => startResize(event, index));
  const { on, off } = filtersOn(item);
  const chart = el("div", { class: "tile-chart" });
  drawChart(chart, item);
  const hasError = [...state.errors.keys()].some((p) => p === base || p.startsWith(base + "/"));
  const node = el(
    "article",
    {
      class: `tile w${width}${hasError ? " has-error" : ""}`,
      role: "listitem",
      tabindex: "0",
      "data-index": String(index),
      "data-report": item.report,
      "data-path": base,
      "data-testid": `tile-${index}`,
      "aria-label": tileWords(item, index),
      "aria-describedby": "board-keys-help",
    },
    el(
      "header",
      { class: "tile-head" },
      grip,
      el("h3", { text: reportLabel(item.report) }),
      el("span", { class: "tile-width", "data-testid": `tile-${index}-width`, text: `${width}/12` }),
      remove,
    ),
    errorAt(base),
    errorAt(`${base}/report`),
    errorAt(`${base}/width`),
    kpiControls(item, index),
    on.length ? el("p", { class: "tile-filters", "data-testid": `tile-${index}-narrowed`, text: t("Narrowed by {filters}", { filters: on.join(" · ") }) }) : null,
    off.length ? el("p", { class: "tile-filters off", "data-testid": `tile-${index}-not-narrowed`, text: t("Not narrowed by {filters}", { filters: off.join(" · ") }) }) : null,
    chart,
    handle,
  );
  node.addEventListener("keydown", (event) => onTileKey(event, index));
  return node;
}

function focusTile(index) {
  root.querySelector(`[data-testid="tile-${index}"]`)?.focus();
}

function moveTile(from, to, { focus = true } = {}) {
  const label = reportLabel(state.board.items[from].report);
  let moved = false;
  change((board) => (moved = m.moveItem(board.items, from, to)));
  if (!moved) return;
  const at = Math.max(0, Math.min(state.board.items.length - 1, to));
  if (focus) focusTile(at);
  announce(t("{report} moved to tile {position} of {count}.", { report: label, position: at + 1, count: state.board.items.length }));
}

function resizeTile(index, width, { focus = true } = {}) {
  const item = state.board.items[index];
  let resized = false;
  change((board) => (resized = m.resizeItem(board.items[index], width)));
  if (focus) focusTile(index);
  if (resized) announce(t("{report}: width {width} of 12.", { report: reportLabel(item.report), width: state.board.items[index].width }));
  else announce(t("{report} is already {width} of 12 wide.", { report: reportLabel(item.report), width: m.clampWidth(width) }));
}

function removeTile(index) {
  const label = reportLabel(state.board.items[index].report);
  change((board) => board.items.splice(index, 1));
  const left = state.board.items.length;
  if (left) focusTile(Math.min(index, left - 1));
  else root.querySelector("[data-testid=tile-report]")?.focus();
  announce(t("{report} removed; {count} tiles left.", { report: label, count: left }));
}

function onTileKey(event, index) {
  if (event.target !== event.currentTarget || event.ctrlKey || event.metaKey || event.altKey) return;
  const width = state.board.items[index].width ?? m.DEFAULT_WIDTH;
  const last = state.board.items.length - 1;
  const keys = event.shiftKey
    ? { ArrowLeft: () => resizeTile(index, width - 1), ArrowDown: () => resizeTile(index, width - 1), ArrowRight: () => resizeTile(index, width + 1), ArrowUp: () => resizeTile(index, width + 1) }
    : {
        ArrowLeft: () => moveTile(index, index - 1),
        ArrowUp: () => moveTile(index, index - 1),
        ArrowRight: () => moveTile(index, index + 1),
        ArrowDown: () => moveTile(index, index + 1),
        Home: () => moveTile(index, 0),
        End: () => moveTile(index, last),
        Delete: () => removeTile(index),
        Backspace: () => removeTile(index),
      };
  const action = keys[event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

// Dragging: the grip moves a tile (dropped before or after the tile under the pointer), the
// handle on its right edge sets its width, snapped to whole columns while it moves.

function clearMarks(grid) {
  for (const node of grid.querySelectorAll(".drop-before, .drop-after, .dragging")) node.classList.remove("drop-before", "drop-after", "dragging");
}

function startMove(event, index) {
  if (event.button !== 0) return;
  event.preventDefault();
  const grip = event.currentTarget;
  const grid = root.querySelector("[data-testid=board-grid]");
  grip.setPointerCapture?.(event.pointerId);
  grid.querySelector(`[data-index="${index}"]`).classList.add("dragging");
  let target = index;
  const onMove = (move) => {
    for (const node of grid.querySelectorAll(".drop-before, .drop-after")) node.classList.remove("drop-before", "drop-after");
    const over = document.elementFromPoint(move.clientX, move.clientY)?.closest?.("[data-testid=board-grid] > .tile");
    if (!over) return;
    const at = Number(over.dataset.index);
    const box = over.getBoundingClientRect();
    const after = move.clientX > box.left + box.width / 2;
    let to = after ? at + 1 : at;
    if (to > index) to -= 1;
    target = to;
    if (at !== index) over.classList.add(after ? "drop-after" : "drop-before");
  };
  const onUp = () => {
    grip.removeEventListener("pointermove", onMove);
    grip.removeEventListener("pointerup", onUp);
    grip.removeEventListener("pointercancel", onUp);
    clearMarks(grid);
    if (target !== index) moveTile(index, target);
  };
  grip.addEventListener("pointermove", onMove);
  grip.addEventListener("pointerup", onUp);
  grip.addEventListener("pointercancel", onUp);
}

function startResize(event, index) {
  if (event.button !== 0) return;
  event.preventDefault();
  const handle = event.currentTarget;
  const tile = handle.closest(".tile");
  const grid = root.querySelector("[data-testid=board-grid]");
  handle.setPointerCapture?.(event.pointerId);
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
  const columnWidth = (grid.getBoundingClientRect().width - gap * (m.COLUMNS - 1)) / m.COLUMNS;
  const left = tile.getBoundingClientRect().left;
  const start = state.board.items[index].width ?? m.DEFAULT_WIDTH;
  let width = start;
  tile.classList.add("resizing");
  const onMove = (move) => {
    const next = m.widthAt(move.clientX, left, columnWidth, gap);
    if (next === width) return;
    tile.classList.replace(`w${width}`, `w${next}`);
    width = next;
    tile.querySelector(".tile-width").textContent = `${width}/12`;
  };
  const onUp = () => {
    handle.removeEventListener("pointermove", onMove);
    handle.removeEventListener("pointerup", onUp);
    handle.removeEventListener("pointercancel", onUp);
    tile.classList.remove("resizing");
    if (width !== start || state.board.items[index].width === undefined) resizeTile(index, width);
  };
  handle.addEventListener("pointermove", onMove);
  handle.addEventListener("pointerup", onUp);
  handle.addEventListener("pointercancel", onUp);
}

function tilesSection() {
  const picker = el(
    "select",
    { "data-testid": "tile-report", id: "tile-report" },
    reports.map((r) =>
      el("option", { value: r.key, text: r.chart?.type === "kpi" ? `${r.label} · ${t("KPI")}` : r.label }),
    ),
  );
  if (lastPicked && reportsByKey[lastPicked]) picker.value = lastPicked;
  picker.addEventListener("change", () => (lastPicked = picker.value));
  const add = el("button", { type: "button", "data-testid": "tile-add", text: `+ ${t("Add the tile")}` });
  add.addEventListener("click", () => {
    const key = picker.value;
    if (!key) return;
    lastPicked = key;
    change((board) => board.items.push(m.newItem(key)));
    root.querySelector("[data-testid=tile-add]")?.focus();
    announce(t("{report} added as tile {position} of {count}, width {width} of 12.", { report: reportLabel(key), position: state.board.items.length, count: state.board.items.length, width: m.DEFAULT_WIDTH }));
  });
  const items = state.board.items ?? [];
  return section(
    t("Tiles"),
    "board-tiles",
    el("div", { class: "tile-picker" }, el("label", { for: "tile-report", text: t("Report") }), picker, add),
    el("p", { class: "muted small", id: "board-keys-help", text: t("Drag a tile by ⠿ to move it and by its right edge to change its width. Or select a tile: the arrows move it, Shift with the arrows changes its width, Delete removes it.") }),
    errorAt("/items"),
    items.length
      ? el("div", { class: "grid board-grid", role: "list", "data-path": "/items", "data-testid": "board-grid", "aria-label": t("Tiles") }, items.map(tileNode))
      : el("p", { class: "muted", "data-testid": "board-empty", "data-path": "/items", text: t("No tiles yet: pick a report and add it.") }),
  );
}

let lastPicked = null;

// -- filters --------------------------------------------------------------------------------

function filterCard(filter, index) {
  const base = `/filters/${index}`;
  const testid = `filter-${index}`;
  const list = state.board.filters;
  const tools = el("div", { class: "card-tools" });
  const up = el("button", { type: "button", class: "icon-button", "aria-label": t("Move up"), disabled: index === 0, text: "↑", "data-testid": `${testid}-up` });
  up.addEventListener("click", () => change((board) => board.filters.splice(index - 1, 0, board.filters.splice(index, 1)[0])));
  const down = el("button", { type: "button", class: "icon-button", "aria-label": t("Move down"), disabled: index === list.length - 1, text: "↓", "data-testid": `${testid}-down` });
  down.addEventListener("click", () => change((board) => board.filters.splice(index + 1, 0, board.filters.splice(index, 1)[0])));
  const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove the filter"), text: "×", "data-testid": `${testid}-remove` });
  remove.addEventListener("click", () => {
    change((board) => board.filters.splice(index, 1));
    announce(t("Filter removed."));
  });
  tools.append(up, down, remove);

  const used = m.formsOfTiles(state.board, reportsByKey);
  const mapped = typeof filter.field === "object" && filter.field ? Object.keys(filter.field) : [];
  const formKeys = [...used, ...mapped.filter((f) => !used.includes(f))];
  const rows = formKeys.map((formKey) => {
    const info = forms[formKey];
    const chosen = m.fieldOf(filter, formKey) ?? "";
    const choices = m.choicesFor(filter.type, info);
    const options = [{ key: "", label: t("— not narrowed —") }, ...choices.map((c) => ({ key: c.key, label: `${c.label} (${c.key})` }))];
    if (chosen && !choices.some((c) => c.key === chosen)) options.push({ key: chosen, label: chosen });
    const path = `${base}/field/${m.escapePart(formKey)}`;
    const picker = el(
      "select",
      { "data-path": path, "data-testid": `${testid}-field-${formKey}`, "aria-label": t("Field of {form}", { form: info?.label ?? formKey }), "aria-invalid": state.errors.has(path) ? "true" : undefined },
      options.map((o) => el("option", { value: o.key, text: o.label, selected: o.key === chosen })),
    );
    picker.value = chosen;
    picker.addEventListener("change", () => change((board) => m.setFieldOf(board.filters[index], formKey, picker.value, forms)));
    const tiles = (state.board.items ?? []).filter((item) => reportsByKey[item.report]?.form === formKey).map((item) => reportLabel(item.report));
    return el(
      "tr",
      { "data-form": formKey, class: m.applies(filter, formKey, info) ? "narrowed" : "not-narrowed" },
      el("th", { scope: "row", text: info?.label ?? formKey }),
      el("td", {}, picker, errorAt(path)),
      el("td", { class: "small", text: tiles.length ? tiles.join(", ") : t("no tile of this form") }),
    );
  });
  const on = [];
  const off = [];
  for (const item of state.board.items ?? []) {
    const form = reportsByKey[item.report]?.form;
    (m.applies(filter, form, forms[form]) ? on : off).push(reportLabel(item.report));
  }
  const id = nextId();
  const hasError = [...state.errors.keys()].some((p) => p === base || p.startsWith(base + "/"));
  return el(
    "article",
    { class: `action-card filter-card${hasError ? " has-error" : ""}`, "data-testid": testid, "data-path": base, "aria-labelledby": id },
    el("header", {}, el("h3", { id, text: `${index + 1}. ${t(FILTER_NAMES[filter.type] ?? filter.type)}` }), tools),
    errorAt(base),
    row(t("Key"), textBox(`${base}/key`, `${testid}-key`, { placeholder: filter.type === "date_range" ? "period" : "department" }), `${base}/key`, t("The name in the page's address (?department=…).")),
    labelBoxes(`${base}/label`, `${testid}-label`, t("Label")),
    formKeys.length
      ? el(
          "table",
          { class: "filter-wiring", "data-path": `${base}/field` },
          el("caption", { text: t("The field it narrows, per form") }),
          el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("Form") }), el("th", { scope: "col", text: t("Field") }), el("th", { scope: "col", text: t("Tiles") }))),
          el("tbody", {}, rows),
        )
      : el("p", { class: "muted small", "data-path": `${base}/field`, text: t("Add tiles first: a filter is wired to a field of each of their forms.") }),
    errorAt(`${base}/field`),
    el("p", { class: "small", "data-testid": `${testid}-narrows`, text: t("Narrows: {tiles}", { tiles: on.length ? on.join(", ") : t("no tile") }) }),
    off.length ? el("p", { class: "small muted", "data-testid": `${testid}-skips`, text: t("Does not narrow: {tiles}", { tiles: off.join(", ") }) }) : null,
  );
}

function filtersSection() {
  const list = state.board.filters ?? [];
  const buttons = m.FILTER_TYPES.map((type) => {
    const button = el("button", { type: "button", class: "quiet", "data-testid": `filter-add-${type}`, text: `+ ${t(FILTER_NAMES[type])}` });
    button.addEventListener("click", () => {
      change((board) => {
        board.filters = board.filters ?? [];
        board.filters.push(m.newFilter(type, locales));
      });
      root.querySelector(`[data-testid="filter-${state.board.filters.length - 1}-key"]`)?.focus();
      announce(t("Filter added."));
    });
    return button;
  });
  return section(t("Filters"), "board-filters", list.map(filterCard), errorAt("/filters"), el("div", { class: "re-buttons" }, buttons));
}

// -- drawing --------------------------------------------------------------------------------

function render() {
  const focused = document.activeElement;
  const focusKey = focused?.dataset?.testid;
  bodyNode.replaceChildren(head(), tilesSection(), filtersSection());
  fitShown();
  refreshChrome();
  if (focusKey && root.contains(focused) === false) root.querySelector(`[data-testid="${CSS.escape(focusKey)}"]`)?.focus();
}

// -- saving ---------------------------------------------------------------------------------

function setStatus(text, kind = "") {
  statusNode.textContent = text;
  statusNode.dataset.kind = kind;
}

function showErrors(errors) {
  state.errors = new Map();
  const general = [];
  for (const error of errors) {
    if (error.in === "app") general.push(error);
    else state.errors.set(error.path || "", error.message);
  }
  render();
  // problems whose pointer has no control of its own go to the nearest one above it
  const unplaced = [];
  for (const [path, message] of state.errors) {
    if (root.querySelector(`[data-error-for="${CSS.escape(path)}"]`)) continue;
    const parts = m.splitPointer(path);
    let placed = false;
    while (parts.length) {
      parts.pop();
      const target = root.querySelector(`[data-path="${CSS.escape(m.pointer(...parts))}"]`);
      if (target) {
        const note = el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message });
        if (target.matches(".tile, .filter-card, .board-grid")) target.prepend(note);
        else target.after(note);
        target.closest(".tile, .filter-card")?.classList.add("has-error");
        placed = true;
        break;
      }
    }
    if (!placed) unplaced.push({ path, message });
  }
  const listed = [...general, ...unplaced];
  problemsNode.replaceChildren(
    el("p", { text: t("The dashboard was not saved: {n} problem(s).", { n: errors.length }) }),
    listed.length ? el("ul", {}, listed.map((e) => el("li", { text: `${e.path || "/"}: ${e.message}` }))) : null,
  );
  problemsNode.hidden = false;
  root.querySelector(".field-error")?.scrollIntoView({ block: "center" });
}

function clearErrors() {
  state.errors = new Map();
  problemsNode.hidden = true;
  problemsNode.replaceChildren();
}

function localProblems() {
  const errors = [];
  if (state.isNew && m.keyProblem(state.board.key)) {
    errors.push({ path: "/key", message: state.board.key ? t("Use lower-case letters, digits and _, starting with a letter.") : t("Give the dashboard a key.") });
  }
  if (!state.board.items?.length) errors.push({ path: "/items", message: t("Add at least one tile.") });
  const seen = new Set();
  (state.board.filters ?? []).forEach((filter, index) => {
    const path = `/filters/${index}/key`;
    if (m.keyProblem(filter.key)) errors.push({ path, message: filter.key ? t("Use lower-case letters, digits and _, starting with a letter.") : t("Give the filter a key.") });
    else if (seen.has(filter.key)) errors.push({ path, message: t("Another filter has this key.") });
    seen.add(filter.key);
  });
  return errors;
}

function planBody(plan) {
  const boards = plan.dashboards ?? {};
  const lines = [];
  for (const [kind, text] of [["added", "Added"], ["changed", "Changed"], ["removed", "Removed"]]) {
    if (boards[kind]?.length) lines.push(el("li", { text: `${t(text)}: ${boards[kind].join(", ")}` }));
  }
  if (!lines.length) lines.push(el("li", { text: t("Nothing changes.") }));
  return [
    el("ul", { "data-testid": "board-plan-lines" }, lines),
    el("p", { class: "muted small", text: t("Saving makes a new revision of the app ({revision} now); an admin can roll it back.", { revision: state.revision }) }),
  ];
}

async function confirmPlan(plan) {
  root.querySelector("[data-plan-body]").replaceChildren(...planBody(plan));
  planDialog.showModal();
  const confirm = root.querySelector("[data-testid=board-confirm]");
  confirm.focus();
  return new Promise((resolve) => {
    const done = (value) => {
      confirm.removeEventListener("click", onConfirm);
      planDialog.removeEventListener("close", onClose);
      resolve(value);
    };
    const onConfirm = () => {
      planDialog.close("confirm");
      done(true);
    };
    const onClose = () => done(planDialog.returnValue === "confirm");
    confirm.addEventListener("click", onConfirm);
    planDialog.addEventListener("close", onClose);
  });
}

async function save() {
  checkpoint();
  clearErrors();
  const local = localProblems();
  if (local.length) {
    showErrors(local);
    setStatus(t("Not saved."), "error");
    return;
  }
  const board = m.compact(state.board);
  const key = board.key;
  const url = `/api/apps/${encodeURIComponent(app.key)}/dashboards/${encodeURIComponent(key)}`;
  const headers = { "If-Match": `"${state.revision}"` };
  setStatus(t("Checking…"));
  let plan;
  try {
    ({ data: plan } = await api(`${url}?dry_run=true`, { method: "PUT", body: board, headers }));
  } catch (error) {
    return failed(error);
  }
  setStatus("");
  if (!(await confirmPlan(plan))) {
    setStatus(t("Not saved."));
    return;
  }
  setStatus(t("Saving…"));
  try {
    const { data: result } = await api(url, { method: "PUT", body: board, headers });
    state.revision = result.revision;
    savedText = JSON.stringify(board);
    if (state.isNew) {
      state.isNew = false;
      root.querySelector("[data-testid=board-delete]").hidden = false;
      const view = root.querySelector("[data-testid=board-view]");
      view.href = `/apps/${app.key}/dashboards/${encodeURIComponent(key)}`;
      view.hidden = false;
      history.replaceState(null, "", `/designer/${app.key}/dashboards/${encodeURIComponent(key)}${key === "new" ? "?existing=1" : ""}`);
    }
    render();
    setStatus(t("Saved (revision {revision}).", { revision: result.revision }), "ok");
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  if (error instanceof ApiError && error.status === 422) {
    showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }]);
    setStatus(t("Not saved."), "error");
  } else if (error instanceof ApiError && error.status === 412) {
    const text = t("Someone saved this app meanwhile; reload the page to see their changes (yours are lost on reload).");
    setStatus(text, "error");
    const reload = el("button", { type: "button", class: "quiet", "data-testid": "board-reload", text: t("Reload") });
    reload.addEventListener("click", () => window.location.reload());
    problemsNode.replaceChildren(el("p", { text }), reload);
    problemsNode.hidden = false;
  } else {
    setStatus(error.message, "error");
  }
}

async function deleteBoard() {
  if (state.isNew) return;
  const key = state.board.key;
  if (!window.confirm(t("Delete the dashboard {dashboard}? An admin can bring it back by rolling the app back.", { dashboard: key }))) return;
  setStatus(t("Deleting…"));
  try {
    await api(`/api/apps/${encodeURIComponent(app.key)}/dashboards/${encodeURIComponent(key)}`, { method: "DELETE", headers: { "If-Match": `"${state.revision}"` } });
    savedText = JSON.stringify(m.compact(state.board)); // nothing left unsaved to guard
    window.location.assign(`/designer/${app.key}/dashboards`);
  } catch (error) {
    failed(error);
  }
}

// -- keyboard and the unsaved-changes guard --------------------------------------------------

root.querySelector("[data-testid=board-undo]").addEventListener("click", undo);
root.querySelector("[data-testid=board-redo]").addEventListener("click", redo);
root.querySelector("[data-testid=board-save]").addEventListener("click", save);
root.querySelector("[data-testid=board-delete]").addEventListener("click", deleteBoard);
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey)) return;
  const key = event.key.toLowerCase();
  const inText = event.target.matches?.("input, textarea");
  if (key === "s") {
    event.preventDefault();
    save();
  } else if (key === "z" && !event.shiftKey && !inText) {
    event.preventDefault();
    undo();
  } else if (((key === "z" && event.shiftKey) || key === "y") && !inText) {
    event.preventDefault();
    redo();
  }
});
window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

render();
root.dataset.ready = "true"; // the buttons work from now on (tests wait for it)
