// The report builder (/designer/{app}/reports/{report}): pick a form, drag its fields into
// Rows, Columns and Measures (or use each field's buttons), set measures, date buckets, the
// filter, totals, sort, top-N and the chart, and see the table and chart as they come out
// (docs/ui.md, "The report builder"). The page's data (#report-builder-data) holds the report
// as written, the app's forms and fields, and the revision it was read at.
//
// Invariants:
// - the report is edited as the JSON it is saved as (report-builder-model.js); every control
//   has `data-path`, the JSON pointer of what it edits, where a 422 from the preview or the
//   save is shown;
// - a change made with the mouse or keyboard is one undo step (text boxes: when left);
// - the preview runs at most once per pause in the editing (debounced) and only its latest
//   answer is shown; nothing is written but by the Save button (plan first, then apply with
//   If-Match).

import { api, ApiError } from "/static/api.js";
import { el } from "/static/dom.js";
import { t, label as labelOf } from "/static/i18n.js";
import { FILTER, needsValue, buildCondition, parseCondition, literal } from "/static/conditions.js";
import { typeName } from "/static/designer-model.js";
import * as m from "/static/report-builder-model.js";

const data = JSON.parse(document.getElementById("report-builder-data").textContent);
const root = document.querySelector("[data-testid=report-builder]");
const formNode = root.querySelector("[data-report-form]");
const statusNode = root.querySelector("[data-testid=report-status]");
const dirtyNode = root.querySelector("[data-testid=report-dirty]");
const problemsNode = root.querySelector("[data-testid=report-problems]");
const jsonNode = root.querySelector("[data-testid=report-json]");
const planDialog = root.querySelector("[data-testid=report-plan]");
const previewState = root.querySelector("[data-testid=preview-state]");
const previewChart = root.querySelector("[data-testid=preview-chart]");
const previewTable = root.querySelector("[data-testid=preview-table]");

const app = data.app;
const locales = app.locales;
const forms = data.forms;
const formsByKey = Object.fromEntries(forms.map((f) => [f.key, f]));
const DRAG_TYPE = "application/x-formloom-field";
const PREVIEW_DELAY = 350;

const state = {
  isNew: data.report === null,
  revision: data.revision,
  report: data.report ? structuredClone(data.report) : { key: "", label: {}, form: forms[0]?.key ?? "", measures: [] },
  errors: [], // [{path, message}] from the last preview or save
  jsonFilters: new Set(), // paths of filters shown as JSON
};
let current = JSON.stringify(state.report);
let savedText = state.isNew ? null : JSON.stringify(m.compact(state.report));
const past = [];
const future = [];

const OP_NAMES = {
  count: "Count",
  count_distinct: "Count distinct",
  sum: "Sum",
  avg: "Average",
  min: "Minimum",
  max: "Maximum",
  median: "Median",
  percentile: "Percentile",
  stddev: "Standard deviation",
  running_total: "Running total (down the rows)",
  rank: "Rank (1 = largest)",
  moving_average: "Moving average (down the rows)",
  cumulative_percent: "Cumulative percent (down the rows)",
  period_over_period: "Compared with an earlier period",
  ratio: "Ratio (a ÷ b)",
  difference: "Difference (a − b)",
  percent_of_total: "Percent of total",
};
const BUCKET_NAMES = { day: "Day", week: "Week", month: "Month", quarter: "Quarter", year: "Year", weekday: "Weekday", hour: "Hour of day" };
const CHART_NAMES = { bar: "Bars", stacked_bar: "Stacked bars", line: "Line", pie: "Pie", donut: "Donut", funnel: "Funnel", kpi: "One number (KPI)" };
const PERIOD_NAMES = { day: "Day", week: "Week", month: "Month", quarter: "Quarter", year: "Year" };
const WITHIN_NAMES = { all: "of the whole table", row: "of its row", column: "of its column" };
const ZONE_NAMES = { rows: "Rows", columns: "Columns", measures: "Measures" };
const COMPARE_NAMES = { percent_change: "Change (a fraction; × 100 for percent)", difference: "Difference", previous: "The earlier value" };
const OFFSET_NAMES = { period: "The period before", year: "The same period a year before" };
const WEEK_NAMES = { monday: "Monday", sunday: "Sunday", saturday: "Saturday" };
const HAVING_NAMES = { ">": "is more than", ">=": "is at least", "<": "is less than", "<=": "is at most", "==": "is", "!=": "is not" };
const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const SORT_OPTIONS = "The order of the options in the form";

// -- history --------------------------------------------------------------------------------

function checkpoint() {
  const now = JSON.stringify(state.report);
  if (now === current) return;
  past.push(current);
  future.length = 0;
  current = now;
  refreshChrome();
}

function restore(text) {
  current = text;
  state.report = JSON.parse(text);
  render();
}

function undo() {
  checkpoint();
  if (!past.length) return;
  future.push(current);
  restore(past.pop());
}

function redo() {
  if (!future.length) return;
  past.push(current);
  restore(future.pop());
}

function isDirty() {
  return JSON.stringify(m.compact(state.report)) !== savedText;
}

function refreshChrome() {
  dirtyNode.hidden = !isDirty();
  root.querySelector("[data-testid=report-undo]").disabled = !past.length && JSON.stringify(state.report) === current;
  root.querySelector("[data-testid=report-redo]").disabled = !future.length;
  jsonNode.textContent = JSON.stringify(m.compact(state.report), null, 2);
  root.querySelector("[data-report-title]").textContent = labelOf(state.report.label) || state.report.key || t("New report");
  schedulePreview();
}

/** Change the report and draw it again (a structural change: one undo step). */
function change(mutate) {
  mutate(state.report);
  checkpoint();
  render();
}

// -- controls -------------------------------------------------------------------------------

let uid = 0;
const nextId = () => `rb-${++uid}`;

function row(text, control, hint) {
  const id = control.id || (control.id = nextId());
  return el("div", { class: "re-row" }, el("label", { for: id, text }), control, hint ? el("span", { class: "muted small", text: hint }) : null);
}

/** A text box bound to `path`; `read`/`write` convert between the box and the report. */
function textBox(path, testid, { type = "text", read = (v) => (v === undefined || v === null ? "" : String(v)), write = (v) => v, placeholder, label, onInput } = {}) {
  const node = el("input", { type, "data-path": path, "data-testid": testid, placeholder, "aria-label": label });
  node.value = read(m.getAt(state.report, path));
  node.addEventListener("input", () => {
    const before = m.getAt(state.report, path);
    m.setAt(state.report, path, write(node.value));
    onInput?.(before, m.getAt(state.report, path));
    refreshChrome();
  });
  node.addEventListener("change", checkpoint);
  return node;
}

function select(path, testid, options, { onPick, value, label } = {}) {
  const chosen = value !== undefined ? value : m.getAt(state.report, path);
  const node = el(
    "select",
    { "data-path": path, "data-testid": testid, "aria-label": label },
    options.map((o) => el("option", { value: o.value, text: o.label, selected: String(o.value) === String(chosen ?? "") })),
  );
  node.value = chosen ?? "";
  node.addEventListener("change", () => {
    if (onPick) change((report) => onPick(node.value, report));
    else change((report) => m.setAt(report, path, node.value === "" ? undefined : node.value));
  });
  return node;
}

function checkbox(path, testid, checked, onToggle) {
  const node = el("input", { type: "checkbox", "data-path": path, "data-testid": testid, checked });
  node.addEventListener("change", () => change((report) => onToggle(node.checked, report)));
  return node;
}

/** A text people read: one box per app locale, side by side. */
function localeBoxes(path, testid, caption) {
  const value = m.getAt(state.report, path);
  if (typeof value === "string") {
    return el("div", { class: "rb-locales", "data-path": path }, row(caption, textBox(path, testid)));
  }
  return el(
    "div",
    { class: "rb-locales", "data-path": path },
    locales.map((locale) => {
      const inner = `${path}/${m.escapePart(locale)}`;
      return row(`${caption} (${locale})`, textBox(inner, `${testid}-${locale}`));
    }),
  );
}

function section(title, testid, ...children) {
  const id = nextId();
  return el("fieldset", { class: "re-section", "data-testid": testid, "aria-labelledby": id }, el("legend", { id, text: title }), ...children);
}

function iconButton(text, label, testid, onClick, disabled = false) {
  return el("button", { type: "button", class: "icon-button", "aria-label": label, title: label, text, "data-testid": testid, disabled, onclick: onClick });
}

// -- fields ---------------------------------------------------------------------------------

function fields() {
  return m.fieldIndex(forms, data.system, state.report.form);
}

function fieldLabel(path) {
  if (!path) return t("Number of records");
  return fields().get(path)?.label ?? path;
}

function fieldChoices(filter = () => true) {
  return [...fields().values()].filter(filter).map((f) => ({ value: f.key, label: f.label }));
}

// -- the report's head ----------------------------------------------------------------------

function head() {
  const parts = [];
  if (state.isNew) {
    parts.push(row(t("Key"), textBox("/key", "report-key", { placeholder: "nps_by_doctor" }), t("Lower-case letters, digits and _; it cannot change later.")));
  }
  parts.push(localeBoxes("/label", "report-label", t("Name")));
  parts.push(localeBoxes("/description", "report-description", t("Description")));
  parts.push(
    row(
      t("Form"),
      select("/form", "report-form", forms.map((f) => ({ value: f.key, label: f.label })), {
        onPick: (value, report) => {
          // the parts name fields of the old form: start over on the new one
          report.form = value;
          delete report.rows;
          delete report.columns;
          delete report.filter;
          delete report.top;
          delete report.sort;
          report.measures = [];
        },
      }),
      t("Changing the form empties the rows, columns, values and filter (Undo brings them back)."),
    ),
  );
  return section(t("Report"), "report-head", ...parts);
}

// -- the palette and drag and drop ----------------------------------------------------------

function addTo(zone, path) {
  const meta = path ? fields().get(path) : undefined;
  change((report) => {
    if (zone === "measures") {
      report.measures = report.measures ?? [];
      report.measures.push(m.newMeasure(report.measures, path, meta));
    } else {
      report[zone] = report[zone] ?? [];
      report[zone].push(m.newDimension(path, meta));
    }
  });
  setStatus(t("{field} added to {zone}.", { field: fieldLabel(path), zone: t(ZONE_NAMES[zone]) }));
}

function chip(path, text, type, { zones = ["rows", "columns", "measures"] } = {}) {
  const testid = `chip-${path || "records"}`;
  const node = el("div", { class: "rb-chip", draggable: "true", "data-testid": testid, "data-field": path, role: "group", "aria-label": text });
  node.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData(DRAG_TYPE, path);
    event.dataTransfer.setData("text/plain", path || "records");
    event.dataTransfer.effectAllowed = "copy";
    root.classList.add("dragging");
  });
  node.addEventListener("dragend", () => root.classList.remove("dragging"));
  const buttons = zones.map((zone) =>
    el("button", {
      type: "button",
      class: "quiet small",
      "data-testid": `${testid}-${zone}`,
      "aria-label": t("Add {field} to {zone}", { field: text, zone: t(ZONE_NAMES[zone]) }),
      text: `+ ${t(ZONE_NAMES[zone])}`,
      // the focus stays on the button (the status says what was added): a keyboard user
      // can add the same field again, or go on to the next
      onclick: () => addTo(zone, path),
    }),
  );
  node.append(el("span", { class: "rb-chip-name", text }));
  if (type) node.append(el("span", { class: "rb-chip-type muted small", text: type }));
  node.append(el("span", { class: "rb-chip-add" }, buttons));
  return node;
}

function palette() {
  const form = formsByKey[state.report.form];
  const all = fields();
  const items = [chip("", t("Number of records"), "", { zones: ["measures"] })];
  const hops = [];
  for (const field of form?.fields ?? []) {
    items.push(chip(field.key, field.label, typeName(field.type)));
    if (field.target && formsByKey[field.target]) {
      const inner = [...all.values()].filter((f) => f.hop === field.key);
      hops.push(
        el(
          "details",
          { class: "rb-hop", "data-testid": `hop-${field.key}` },
          el("summary", { text: t("Through {field}", { field: field.label }) }),
          inner.map((f) => chip(f.key, f.label, typeName(f.type))),
        ),
      );
    }
  }
  for (const field of data.system) items.push(chip(field.key, field.label, typeName(field.type)));
  return el(
    "section",
    { class: "rb-palette", "data-testid": "report-palette", "aria-label": t("Fields") },
    el("h2", { text: t("Fields") }),
    el("p", { class: "muted small", text: t("Drag a field into Rows, Columns or Measures, or use its buttons.") }),
    items,
    hops,
  );
}

function dropZone(node, zone) {
  node.addEventListener("dragover", (event) => {
    if (!event.dataTransfer.types.includes(DRAG_TYPE)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    node.classList.add("over");
  });
  node.addEventListener("dragleave", (event) => {
    if (!node.contains(event.relatedTarget)) node.classList.remove("over");
  });
  node.addEventListener("drop", (event) => {
    if (!event.dataTransfer.types.includes(DRAG_TYPE)) return;
    event.preventDefault();
    node.classList.remove("over");
    root.classList.remove("dragging");
    const path = event.dataTransfer.getData(DRAG_TYPE);
    if (!path && zone !== "measures") {
      setStatus(t("The number of records is a measure: drop it into Measures."), "error");
      return;
    }
    addTo(zone, path);
  });
}

// -- zone items ----------------------------------------------------------------------------

/** The keyboard on an item of a zone: Alt+↑/↓ moves it, Delete removes it. */
function itemKeys(node, zone, index, remove) {
  node.addEventListener("keydown", (event) => {
    if (event.target !== node) return;
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      const step = event.key === "ArrowUp" ? -1 : 1;
      let moved = false;
      change((report) => (moved = m.move(report[zone], index, step)));
      if (moved) root.querySelector(`[data-testid="${zone}-${index + step}"]`)?.focus();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      remove();
      const left = state.report[zone]?.length ?? 0;
      (root.querySelector(`[data-testid="${zone}-${Math.min(index, left - 1)}"]`) ?? root.querySelector(`[data-testid="zone-${zone}"]`))?.focus();
    }
  });
}

function itemTools(zone, index, count, remove, extra = []) {
  const base = `${zone}-${index}`;
  const step = (delta) => () => {
    change((report) => m.move(report[zone], index, delta));
    root.querySelector(`[data-testid="${base}-${delta < 0 ? "up" : "down"}"]`)?.focus();
  };
  return el(
    "div",
    { class: "card-tools" },
    extra,
    iconButton("↑", t("Move up"), `${base}-up`, step(-1), index === 0),
    iconButton("↓", t("Move down"), `${base}-down`, step(1), index === count - 1),
    iconButton("×", t("Remove"), `${base}-remove`, remove),
  );
}

function dimensionItem(zone, dimension, index, count) {
  const base = `/${zone}/${index}`;
  const testid = `${zone}-${index}`;
  const meta = fields().get(dimension.field);
  const remove = () => change((report) => {
    report[zone].splice(index, 1);
    if (zone === "rows" && !report.rows.length) delete report.top;
  });
  const other = zone === "rows" ? "columns" : "rows";
  const swap = iconButton(zone === "rows" ? "→" : "←", t("Move to {zone}", { zone: t(ZONE_NAMES[other]) }), `${testid}-swap`, () =>
    change((report) => {
      const [item] = report[zone].splice(index, 1);
      report[other] = report[other] ?? [];
      report[other].push(item);
    }),
  );
  const body = [];
  const buckets = m.bucketsFor(meta);
  if (buckets.length) {
    body.push(
      row(
        t("Group by"),
        select(`${base}/bucket`, `${testid}-bucket`, [{ value: "", label: t("Each value") }, ...buckets.map((b) => ({ value: b, label: t(BUCKET_NAMES[b]) }))]),
      ),
    );
    if (m.FILLABLE.includes(dimension.bucket)) {
      body.push(
        el("div", { class: "re-checks" }, el("label", { class: "check" },
          checkbox(`${base}/fill`, `${testid}-fill`, Boolean(dimension.fill), (on, r) => (on ? m.setAt(r, `${base}/fill`, true) : m.setAt(r, `${base}/fill`, undefined))),
          ` ${t("Show empty periods too (so a line does not skip them)")}`)),
      );
    }
  }
  if (m.isNumeric(meta)) {
    body.push(
      row(
        t("Bins of width"),
        textBox(`${base}/bin_width`, `${testid}-bin-width`, { type: "number", write: (v) => (v === "" ? undefined : Number(v)) }),
        t("Optional: group numbers into ranges of this width."),
      ),
    );
  }
  body.push(localeBoxes(`${base}/label`, `${testid}-label`, t("Heading")));
  const node = el(
    "article",
    { class: "rb-item", tabindex: "0", "data-testid": testid, "data-path": base, "aria-label": `${t(ZONE_NAMES[zone])} ${index + 1}: ${fieldLabel(dimension.field)}`, "aria-keyshortcuts": "Alt+ArrowUp Alt+ArrowDown Delete" },
    el("header", {}, el("h3", { "data-path": `${base}/field`, text: fieldLabel(dimension.field) }), itemTools(zone, index, count, remove, [swap])),
    body,
  );
  itemKeys(node, zone, index, remove);
  return node;
}

function measureRefs(index) {
  // a running total or rank is read down the rows: nothing is computed from it
  return (state.report.measures ?? []).filter((x, i) => i !== index && !m.SEQUENCE_OPS.includes(x.op)).map((x) => ({ value: x.key, label: labelOf(x.label) || x.key }));
}

function measureItem(measure, index, count) {
  const base = `/measures/${index}`;
  const testid = `measures-${index}`;
  const remove = () => change((report) => m.removeMeasure(report, index));
  const others = measureRefs(index);
  const body = [
    row(
      t("Key"),
      textBox(`${base}/key`, `${testid}-key`, {
        onInput: (before, after) => m.renameMeasure(state.report, before, after),
      }),
      t("Other values, the sort and the chart name it."),
    ),
    row(
      t("Calculation"),
      select(`${base}/op`, `${testid}-op`, [...m.FIELD_OPS, ...m.DERIVED_OPS].map((op) => ({ value: op, label: t(OP_NAMES[op]) })), {
        onPick: (value, report) => {
          report.measures[index] = m.withOp(report.measures[index], value, others.map((o) => o.value));
        },
      }),
    ),
  ];
  const op = measure.op;
  if (m.FIELD_OPS.includes(op)) {
    if (op !== "count") {
      const choices = fieldChoices((f) => m.opAllows(op, f));
      body.push(row(t("Of"), select(`${base}/field`, `${testid}-field`, [{ value: "", label: "—" }, ...choices])));
    }
    if (op === "percentile") {
      body.push(row(t("Which percentile"), textBox(`${base}/p`, `${testid}-p`, { type: "number", placeholder: "0.9", write: (v) => (v === "" ? undefined : Number(v)) }), t("A fraction: 0.9 is the 90th percentile.")));
    }
    body.push(conditionBuilder(`${base}/filter`, `${testid}-filter`, t("Only records where")));
  } else {
    const pick = (part, caption) => row(caption, select(`${base}/${part}`, `${testid}-${part}`, [{ value: "", label: "—" }, ...others]));
    if (op === "ratio") body.push(pick("numerator", t("Numerator")), pick("denominator", t("Denominator")));
    if (op === "difference") body.push(pick("minuend", t("Value")), pick("subtrahend", t("Minus")));
    if (op === "percent_of_total") {
      body.push(pick("of", t("Of the value")));
      body.push(row(t("Share"), select(`${base}/within`, `${testid}-within`, m.WITHIN.map((w) => ({ value: w, label: t(WITHIN_NAMES[w]) })), { value: measure.within ?? "all", onPick: (value, report) => (value === "all" ? delete report.measures[index].within : (report.measures[index].within = value)) })));
    }
    if (m.SEQUENCE_OPS.includes(op) || op === "period_over_period") body.push(pick("of", t("Of the value")));
    if (op === "moving_average") {
      body.push(row(t("Rows averaged"), textBox(`${base}/window`, `${testid}-window`, { type: "number", placeholder: "3", write: (v) => (v === "" ? undefined : Number(v)) }), t("This row and the ones before it: 3 is this month and the two before.")));
    }
    if (op === "period_over_period") {
      const dropDefault = (part, fallback) => (value, report) => (value === fallback ? delete report.measures[index][part] : (report.measures[index][part] = value));
      body.push(
        row(t("Compared with"), select(`${base}/offset`, `${testid}-offset`, m.OFFSETS.map((o) => ({ value: o, label: t(OFFSET_NAMES[o]) })), { value: measure.offset ?? "period", onPick: dropDefault("offset", "period") }), t("Along the report's one date dimension grouped by day, week, month, quarter or year.")),
        row(t("Show"), select(`${base}/compare`, `${testid}-compare`, m.COMPARES.map((c) => ({ value: c, label: t(COMPARE_NAMES[c]) })), { value: measure.compare ?? "percent_change", onPick: dropDefault("compare", "percent_change") })),
        el("div", { class: "re-checks" }, el("label", { class: "check" },
          checkbox(`${base}/to_date`, `${testid}-to-date`, measure.to_date === true, (on, r) => (on ? (r.measures[index].to_date = true) : delete r.measures[index].to_date)),
          ` ${t("Up to today's place in each period (this month so far against the same days of the last)")}`)),
      );
    }
    if (op !== "difference" && (!m.SEQUENCE_OPS.includes(op) || op === "cumulative_percent")) {
      body.push(row(t("Multiplied by"), textBox(`${base}/scale`, `${testid}-scale`, { type: "number", placeholder: "1", write: (v) => (v === "" ? undefined : Number(v)) }), t("100 gives a percentage.")));
    }
  }
  body.push(localeBoxes(`${base}/label`, `${testid}-label`, t("Heading")));
  const title = `${labelOf(measure.label) || measure.key || "—"} · ${t(OP_NAMES[op] ?? op)}${measure.field ? ` · ${fieldLabel(measure.field)}` : ""}`;
  const node = el(
    "article",
    { class: "rb-item rb-measure", tabindex: "0", "data-testid": testid, "data-path": base, "aria-label": `${t("Measures")} ${index + 1}: ${title}`, "aria-keyshortcuts": "Alt+ArrowUp Alt+ArrowDown Delete" },
    el("header", {}, el("h3", { text: title }), itemTools("measures", index, count, remove)),
    body,
  );
  itemKeys(node, "measures", index, remove);
  return node;
}

function zoneSection(name, hint) {
  const list = state.report[name] ?? [];
  const items = list.map((item, index) => (name === "measures" ? measureItem(item, index, list.length) : dimensionItem(name, item, index, list.length)));
  const node = el(
    "section",
    { class: `rb-zone rb-zone-${name}`, "data-testid": `zone-${name}`, "data-path": `/${name}`, tabindex: "-1", "aria-label": t(ZONE_NAMES[name]) },
    el("h2", { text: t(ZONE_NAMES[name]) }),
    items.length ? items : el("p", { class: "muted small rb-empty", text: hint }),
  );
  if (name === "measures") {
    node.append(
      el(
        "div",
        { class: "re-buttons" },
        el("button", { type: "button", class: "quiet small", "data-testid": "measures-add-derived", text: `+ ${t("Calculated value")}`, onclick: () => {
          change((report) => {
            report.measures = report.measures ?? [];
            report.measures.push(m.newDerived(report.measures));
          });
          root.querySelector(`[data-testid="measures-${state.report.measures.length - 1}-key"]`)?.focus();
        } }),
      ),
    );
  }
  dropZone(node, name);
  return node;
}

// -- conditions (the report's filter and each value's) --------------------------------------

function conditionBuilder(path, testid, caption) {
  const rule = m.getAt(state.report, path);
  const all = fields();
  const typeOf = (name) => {
    const meta = all.get(name);
    return meta && !meta.hop && !meta.system ? meta.type : undefined;
  };
  const parsed = state.jsonFilters.has(path) ? null : parseCondition(rule, FILTER, typeOf);
  if (parsed === null) {
    const box = el("textarea", { rows: 3, class: "json", "data-path": path, "data-testid": `${testid}-json`, "aria-label": caption });
    box.value = rule === undefined ? "" : JSON.stringify(rule, null, 1);
    box.addEventListener("change", () => {
      const text = box.value.trim();
      if (!text) return change((report) => m.setAt(report, path, undefined));
      try {
        const value = JSON.parse(text);
        change((report) => m.setAt(report, path, value));
      } catch {
        showErrors([{ path, message: t("This is not valid JSON.") }], { banner: false });
      }
    });
    const back = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-builder`, text: t("Use the builder"), onclick: () => {
      state.jsonFilters.delete(path);
      if (parseCondition(m.getAt(state.report, path), FILTER, typeOf) === null) change((report) => m.setAt(report, path, undefined));
      else render();
    } });
    return el("div", { class: "rb-condition", "data-path": path }, row(`${caption} (JsonLogic)`, box), back);
  }
  const formFields = [...all.values()].filter((f) => !f.hop && !f.system);
  const write = (next) => change((report) => m.setAt(report, path, buildCondition(next)));
  const rows = parsed.rows.map((item, index) => {
    const type = typeOf(item.field);
    const field = el("select", { "data-testid": `${testid}-field-${index}`, "aria-label": t("Field") }, formFields.map((f) => el("option", { value: f.key, text: f.label, selected: f.key === item.field })));
    field.value = item.field;
    field.addEventListener("change", () => {
      const next = structuredClone(parsed);
      next.rows[index] = { field: field.value, op: FILTER.operators(typeOf(field.value))[0], value: null };
      write(next);
    });
    const op = el("select", { "data-testid": `${testid}-op-${index}`, "aria-label": t("Operator") }, FILTER.operators(type).map((o) => el("option", { value: o, text: t(FILTER.label(o, type)), selected: o === item.op })));
    op.value = item.op;
    op.addEventListener("change", () => {
      const next = structuredClone(parsed);
      next.rows[index] = { ...item, op: op.value, value: needsValue(op.value) ? item.value : null };
      write(next);
    });
    let value = null;
    if (needsValue(item.op)) {
      const meta = all.get(item.field);
      if (meta?.options) {
        value = el("select", { "data-testid": `${testid}-value-${index}`, "aria-label": t("Value") }, el("option", { value: "", text: "—" }), meta.options.map((o) => el("option", { value: o.value, text: o.label, selected: o.value === item.value })));
      } else {
        value = el("input", { type: "text", "data-testid": `${testid}-value-${index}`, "aria-label": t("Value") });
        value.value = item.value === null || item.value === undefined ? "" : String(item.value);
      }
      value.addEventListener("change", () => {
        const next = structuredClone(parsed);
        next.rows[index] = { ...item, value: literal(type, value.value) };
        write(next);
      });
    }
    const remove = iconButton("×", t("Remove this condition"), `${testid}-remove-${index}`, () => {
      const next = structuredClone(parsed);
      next.rows.splice(index, 1);
      write(next);
    });
    return el("div", { class: "condition-row" }, field, op, value, remove);
  });
  const join = el(
    "select",
    { "data-testid": `${testid}-join`, "aria-label": t("Join") },
    el("option", { value: "all", text: t("all of these are true"), selected: parsed.join === "all" }),
    el("option", { value: "any", text: t("any of these is true"), selected: parsed.join === "any" }),
  );
  join.addEventListener("change", () => write({ ...parsed, join: join.value }));
  const add = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-add`, text: `+ ${caption}…`, onclick: () => {
    const first = formFields[0];
    if (!first) return;
    const next = structuredClone(parsed);
    const op = FILTER.operators(first.type)[0];
    next.rows.push({ field: first.key, op, value: needsValue(op) ? "" : null });
    write(next);
    root.querySelector(`[data-testid="${testid}-field-${next.rows.length - 1}"]`)?.focus();
  } });
  const asJson = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-as-json`, text: t("Edit as JSON"), onclick: () => {
    state.jsonFilters.add(path);
    render();
  } });
  return el(
    "div",
    { class: "rb-condition", "data-path": path },
    parsed.rows.length ? el("span", { class: "re-caption", text: caption }) : null,
    parsed.rows.length > 1 ? row(t("Count when"), join) : null,
    rows,
    el("div", { class: "re-buttons" }, add, asJson),
  );
}

// -- options and chart ----------------------------------------------------------------------

function measureChoices() {
  return (state.report.measures ?? []).map((x) => ({ value: x.key, label: labelOf(x.label) || x.key }));
}

function optionsSection() {
  const report = state.report;
  const parts = [conditionBuilder("/filter", "filter", t("Only records where"))];
  parts.push(
    el(
      "div",
      { class: "re-checks" },
      el("label", { class: "check" }, checkbox("/totals", "report-totals", report.totals !== false, (on, r) => (on ? delete r.totals : (r.totals = false))), ` ${t("Totals (row, column and grand total)")}`),
      el("label", { class: "check" }, checkbox("/subtotals", "report-subtotals", report.subtotals === true, (on, r) => (on ? (r.subtotals = true) : delete r.subtotals)), ` ${t("Subtotals for every level")}`),
    ),
  );
  const sortBy = report.sort?.by ?? "label";
  const direction = report.sort?.direction ?? "asc";
  const writeSort = (by, dir, r) => {
    if (by === "label" && dir !== "desc") delete r.sort;
    else r.sort = dir === "desc" ? { by, direction: "desc" } : { by };
  };
  const readable = m.readableMeasures(report.measures).map((x) => ({ value: x.key, label: labelOf(x.label) || x.key }));
  const sortChoices = [{ value: "label", label: t("Their headings") }, { value: "options", label: t(SORT_OPTIONS) }, ...readable];
  parts.push(
    row(t("Sort rows by"), select("/sort/by", "sort-by", sortChoices, { value: sortBy, onPick: (value, r) => writeSort(value, direction, r) })),
    row(t("Order"), select("/sort/direction", "sort-direction", [{ value: "asc", label: t("Ascending") }, { value: "desc", label: t("Descending") }], { value: direction, onPick: (value, r) => writeSort(sortBy, value, r) })),
  );
  if ((report.columns ?? []).length) {
    const columnsBy = report.column_sort?.by ?? "label";
    const columnsDirection = report.column_sort?.direction ?? "asc";
    const writeColumns = (by, dir, r) => {
      if (by === "label" && dir !== "desc") delete r.column_sort;
      else r.column_sort = dir === "desc" ? { by, direction: "desc" } : { by };
    };
    parts.push(
      row(t("Sort columns by"), select("/column_sort/by", "column-sort-by", sortChoices, { value: columnsBy, onPick: (value, r) => writeColumns(value, columnsDirection, r) })),
      row(t("Column order"), select("/column_sort/direction", "column-sort-direction", [{ value: "asc", label: t("Ascending") }, { value: "desc", label: t("Descending") }], { value: columnsDirection, onPick: (value, r) => writeColumns(columnsBy, value, r) })),
    );
  }
  parts.push(havingBuilder(readable));
  const top = report.top;
  const base = (report.measures ?? []).filter((x) => !m.DERIVED_OPS.includes(x.op));
  parts.push(
    el(
      "div",
      { class: "re-checks" },
      el(
        "label",
        { class: "check" },
        checkbox("/top", "top-on", Boolean(top), (on, r) => (on ? (r.top = { n: 10, by: base[0]?.key ?? "" }) : delete r.top)),
        ` ${t("Only the top rows of the first row dimension")}`,
      ),
    ),
  );
  if (top) {
    parts.push(
      row(t("How many"), textBox("/top/n", "top-n", { type: "number", write: (v) => (v === "" ? undefined : Number(v)) })),
      row(t("Ranked by"), select("/top/by", "top-by", base.map((x) => ({ value: x.key, label: labelOf(x.label) || x.key })))),
      row(t("Keep"), select("/top/keep", "top-keep", [{ value: "largest", label: t("The largest") }, { value: "smallest", label: t("The smallest") }], { value: top.keep ?? "largest", onPick: (value, r) => (value === "largest" ? delete r.top.keep : (r.top.keep = value)) })),
      el("div", { class: "re-checks" }, el("label", { class: "check" }, checkbox("/top/other", "top-other", top.other !== false, (on, r) => (on ? delete r.top.other : (r.top.other = false))), ` ${t("Put the rest in one “Other” row")}`)),
    );
  }
  if ((report.rows ?? []).length >= 2) {
    const group = report.top_per_group;
    parts.push(
      el("div", { class: "re-checks" }, el("label", { class: "check" },
        checkbox("/top_per_group", "group-top-on", Boolean(group), (on, r) => (on ? (r.top_per_group = { n: 3, by: readable[0]?.value ?? "" }) : delete r.top_per_group)),
        ` ${t("Only the top values of the last row dimension in each group (the top 3 doctors of each branch)")}`)),
    );
    if (group) {
      parts.push(
        row(t("How many in each group"), textBox("/top_per_group/n", "group-top-n", { type: "number", write: (v) => (v === "" ? undefined : Number(v)) })),
        row(t("Ranked by"), select("/top_per_group/by", "group-top-by", readable)),
        row(t("Keep"), select("/top_per_group/keep", "group-top-keep", [{ value: "largest", label: t("The largest") }, { value: "smallest", label: t("The smallest") }], { value: group.keep ?? "largest", onPick: (value, r) => (value === "largest" ? delete r.top_per_group.keep : (r.top_per_group.keep = value)) })),
        el("div", { class: "re-checks" }, el("label", { class: "check" }, checkbox("/top_per_group/other", "group-top-other", group.other !== false, (on, r) => (on ? delete r.top_per_group.other : (r.top_per_group.other = false))), ` ${t("Put the rest of each group in one “Other” row")}`)),
      );
    }
  }
  return section(t("Filter, totals and order"), "report-options", ...parts);
}

/** `having`: rows "value · comparison · number", all true; JSON when it says more. */
function havingBuilder(readable) {
  const path = "/having";
  const caption = t("Only rows whose values");
  const rows = state.jsonFilters.has(path) ? null : m.parseHaving(state.report.having);
  const hint = t("Rows are chosen after counting; totals still count every record.");
  if (rows === null) {
    const box = el("textarea", { rows: 3, class: "json", "data-path": path, "data-testid": "having-json", "aria-label": caption });
    box.value = state.report.having === undefined ? "" : JSON.stringify(state.report.having, null, 1);
    box.addEventListener("change", () => {
      const text = box.value.trim();
      if (!text) return change((report) => delete report.having);
      try {
        const value = JSON.parse(text);
        change((report) => (report.having = value));
      } catch {
        showErrors([{ path, message: t("This is not valid JSON.") }], { banner: false });
      }
    });
    return el("div", { class: "rb-condition", "data-path": path }, row(`${caption} (JsonLogic)`, box, hint));
  }
  const write = (next) => change((report) => {
    const rule = m.buildHaving(next);
    if (rule === undefined) delete report.having;
    else report.having = rule;
  });
  const lines = rows.map((item, index) => {
    const measure = el("select", { "data-testid": `having-measure-${index}`, "aria-label": t("Value") }, readable.map((c) => el("option", { value: c.value, text: c.label, selected: c.value === item.measure })));
    measure.value = item.measure;
    measure.addEventListener("change", () => write(rows.map((r, i) => (i === index ? { ...r, measure: measure.value } : r))));
    const op = el("select", { "data-testid": `having-op-${index}`, "aria-label": t("Operator") }, m.HAVING_OPS.map((o) => el("option", { value: o, text: t(HAVING_NAMES[o]), selected: o === item.op })));
    op.value = item.op;
    op.addEventListener("change", () => write(rows.map((r, i) => (i === index ? { ...r, op: op.value } : r))));
    const value = el("input", { type: "number", "data-testid": `having-value-${index}`, "aria-label": t("Number") });
    value.value = String(item.value);
    value.addEventListener("change", () => {
      const number = Number(value.value);
      if (value.value.trim() !== "" && Number.isFinite(number)) write(rows.map((r, i) => (i === index ? { ...r, value: number } : r)));
    });
    const remove = iconButton("×", t("Remove this condition"), `having-remove-${index}`, () => write(rows.filter((_, i) => i !== index)));
    return el("div", { class: "condition-row" }, measure, op, value, remove);
  });
  const add = el("button", { type: "button", class: "quiet small", "data-testid": "having-add", disabled: !readable.length, text: `+ ${caption}…`, onclick: () => {
    write([...rows, { measure: readable[0]?.value ?? "", op: "<", value: 0 }]);
    root.querySelector(`[data-testid="having-value-${rows.length}"]`)?.focus();
  } });
  const asJson = el("button", { type: "button", class: "quiet small", "data-testid": "having-as-json", text: t("Edit as JSON"), onclick: () => {
    state.jsonFilters.add(path);
    render();
  } });
  return el(
    "div",
    { class: "rb-condition", "data-path": path, "data-testid": "having" },
    rows.length ? el("span", { class: "re-caption", text: `${caption} (${t("all of these are true")})` }) : null,
    lines,
    el("div", { class: "re-buttons" }, add, asJson),
    rows.length ? el("p", { class: "muted small", text: hint }) : null,
  );
}

/** The report's clock: its own zone, the first day of a week, the first month of a year. */
function timeSection() {
  const report = state.report;
  const months = MONTH_NAMES.map((name, i) => ({ value: String(i + 1), label: t(name) }));
  return section(
    t("Time"),
    "report-time",
    row(t("Time zone"), textBox("/time_zone", "time-zone", { placeholder: t("The app's (e.g. America/New_York)"), write: (v) => (v.trim() === "" ? undefined : v.trim()) }), t("An IANA zone name, for a branch in another zone; empty: the app's clock.")),
    row(t("Weeks start on"), select("/week_start", "week-start", m.WEEK_STARTS.map((w) => ({ value: w, label: t(WEEK_NAMES[w]) })), { value: report.week_start ?? "monday", onPick: (value, r) => (value === "monday" ? delete r.week_start : (r.week_start = value)) })),
    row(t("The year starts in"), select("/fiscal_year_start", "fiscal-year-start", months, { value: String(report.fiscal_year_start ?? 1), onPick: (value, r) => (value === "1" ? delete r.fiscal_year_start : (r.fiscal_year_start = Number(value))) }), t("A fiscal year: quarters and years are named FY2026 Q1, by the year they end in.")),
  );
}

function chart() {
  const spec = state.report.chart;
  const parts = [
    row(
      t("Chart"),
      select("/chart/type", "chart-type", [{ value: "", label: t("No chart") }, ...m.CHART_TYPES.map((c) => ({ value: c, label: t(CHART_NAMES[c]) }))], {
        value: spec?.type ?? "",
        onPick: (value, r) => {
          if (!value) delete r.chart;
          else r.chart = { ...(r.chart ?? {}), type: value };
        },
      }),
    ),
  ];
  if (spec?.type) {
    parts.push(row(t("Value drawn"), select("/chart/measure", "chart-measure", [{ value: "", label: t("The first value") }, ...measureChoices()])));
    if (spec.type === "kpi") {
      const dates = [...fields().values()].filter((f) => !f.hop && (f.type === "date" || f.type === "datetime"));
      parts.push(row(t("Period of"), select("/chart/period_field", "chart-period-field", [{ value: "", label: "—" }, ...dates.map((f) => ({ value: f.key, label: f.label }))])));
      parts.push(row(t("Period"), select("/chart/period", "chart-period", m.PERIODS.map((p) => ({ value: p, label: t(PERIOD_NAMES[p]) })), { value: spec.period ?? "month" })));
    } else {
      parts.push(localeBoxes("/chart/x_label", "chart-x-label", t("X axis")));
      parts.push(localeBoxes("/chart/y_label", "chart-y-label", t("Y axis")));
    }
  }
  return section(t("Chart"), "report-chart", ...parts);
}

// -- drawing --------------------------------------------------------------------------------

function render() {
  const focused = document.activeElement;
  const focusKey = focused?.dataset?.testid;
  const selection = focused && "selectionStart" in focused ? [focused.selectionStart, focused.selectionEnd] : null;
  formNode.replaceChildren(
    head(),
    el(
      "div",
      { class: "rb-pivot" },
      palette(),
      el("div", { class: "rb-zones" }, zoneSection("rows", t("Drop fields here: one row per value.")), zoneSection("columns", t("Drop fields here: one column per value.")), zoneSection("measures", t("Drop “Number of records” or a field here."))),
    ),
    optionsSection(),
    timeSection(),
    chart(),
  );
  placeErrors();
  refreshChrome();
  if (focusKey && !root.contains(focused)) {
    const again = root.querySelector(`[data-testid="${CSS.escape(focusKey)}"]`);
    if (again) {
      again.focus();
      if (selection && "setSelectionRange" in again && again.type !== "number") {
        try {
          again.setSelectionRange(...selection);
        } catch {
          /* not a text box */
        }
      }
    }
  }
}

// -- errors at their element ----------------------------------------------------------------

function placeErrors() {
  for (const node of root.querySelectorAll(".field-error[data-error-for]")) node.remove();
  for (const node of root.querySelectorAll("[aria-invalid=true]")) node.removeAttribute("aria-invalid");
  for (const node of root.querySelectorAll(".rb-item.has-error")) node.classList.remove("has-error");
  const unplaced = [];
  for (const { path, message } of state.errors) {
    const parts = m.splitPointer(path);
    let target;
    for (;;) {
      target = root.querySelector(`[data-path="${CSS.escape(m.pointer(...parts))}"]`);
      if (target || !parts.length) break;
      parts.pop();
    }
    if (!target || !path) {
      unplaced.push({ path, message });
      continue;
    }
    target.setAttribute("aria-invalid", "true");
    target.closest(".rb-item")?.classList.add("has-error");
    const note = el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message });
    if (target.matches("article, section, fieldset, div")) target.append(note);
    else target.after(note);
  }
  return unplaced;
}

/** Show `errors` ({path, message}) at their elements; `banner`: the save's summary too. */
function showErrors(errors, { banner = true } = {}) {
  state.errors = errors.map((e) => ({ path: e.path || "", message: e.message, general: e.in === "app" }));
  const unplaced = placeErrors();
  if (banner) {
    const listed = [...state.errors.filter((e) => e.general), ...unplaced.filter((e) => !state.errors.find((x) => x.general && x.path === e.path))];
    problemsNode.replaceChildren(
      el("p", { text: t("The report was not saved: {n} problem(s).", { n: errors.length }) }),
      listed.length ? el("ul", {}, listed.map((e) => el("li", { text: `${e.path || "/"}: ${e.message}` }))) : null,
    );
    problemsNode.hidden = false;
    root.querySelector(".field-error")?.scrollIntoView({ block: "center" });
  }
  return unplaced;
}

function clearErrors() {
  state.errors = [];
  placeErrors();
  problemsNode.hidden = true;
  problemsNode.replaceChildren();
}

// -- the live preview -----------------------------------------------------------------------

// The dashboard page fits a chart's labels to their measured widths (dashboard.js `fitChart`,
// which reads the page's #dashboard-data); the preview's chart is fitted the same way.
const fitter = import("/static/dashboard.js").then((page) => page.fitChart ?? null).catch(() => null);

let previewTimer = null;
let previewed = null; // the compact JSON last sent
let previewSeq = 0;

function schedulePreview() {
  const body = JSON.stringify(m.compact(state.report));
  if (body === previewed) return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => runPreview(body), PREVIEW_DELAY);
}

async function runPreview(body) {
  previewed = body;
  const report = JSON.parse(body);
  const seq = ++previewSeq;
  if (!report.measures?.length) {
    previewChart.replaceChildren();
    previewTable.replaceChildren();
    previewState.textContent = t("Add a value to see the report.");
    root.dataset.preview = "empty";
    return;
  }
  previewState.textContent = t("Running…");
  root.dataset.preview = "running";
  try {
    const { data: answer } = await api(`/designer/${app.key}/reports/preview`, { method: "POST", body: report });
    if (seq !== previewSeq) return; // a newer preview is on its way
    previewChart.innerHTML = answer.svg; // drawn and escaped by the server (as a dashboard tile)
    previewTable.innerHTML = answer.table;
    fitter.then((fitChart) => {
      const svg = previewChart.querySelector("svg");
      if (fitChart && svg && seq === previewSeq) fitChart(svg);
    });
    const rows = answer.result.rows.length;
    previewState.textContent = t("{n} row(s) · as of now, with your access", { n: rows });
    if (answer.result.rows_left_out) {
      previewState.textContent += ` · ${t("{n} left out by the conditions on values (the totals count them)", { n: answer.result.rows_left_out })}`;
    }
    if (state.errors.length && problemsNode.hidden) {
      state.errors = [];
      placeErrors();
    }
    root.dataset.preview = "ok";
  } catch (error) {
    if (seq !== previewSeq) return;
    previewChart.replaceChildren();
    previewTable.replaceChildren();
    if (error instanceof ApiError && (error.status === 422 || error.status === 403) && error.errors.length) {
      const unplaced = showErrors(error.errors, { banner: false });
      previewState.textContent = t("The report cannot run yet: {problem}", { problem: error.errors.map((e) => e.message).join("; ") });
      if (unplaced.length) previewState.textContent += ` (${unplaced.map((e) => e.path || "/").join(", ")})`;
    } else {
      previewState.textContent = error.message;
    }
    root.dataset.preview = "error";
  }
}

// -- saving ---------------------------------------------------------------------------------

function setStatus(text, kind = "") {
  statusNode.textContent = text;
  statusNode.dataset.kind = kind;
}

function localProblems() {
  const errors = [];
  if (state.isNew && m.keyProblem(state.report.key)) {
    errors.push({ path: "/key", message: state.report.key ? t("Use lower-case letters, digits and _, starting with a letter.") : t("Give the report a key.") });
  }
  if (!state.report.measures?.length) errors.push({ path: "/measures", message: t("Add at least one value.") });
  return errors;
}

function planBody(plan) {
  const reports = plan.reports ?? {};
  const lines = [];
  for (const [kind, text] of [["added", "Added"], ["changed", "Changed"], ["removed", "Removed"]]) {
    if (reports[kind]?.length) lines.push(el("li", { text: `${t(text)}: ${reports[kind].join(", ")}` }));
  }
  if (!lines.length) lines.push(el("li", { text: t("Nothing changes.") }));
  return [
    el("ul", { "data-testid": "report-plan-lines" }, lines),
    el("p", { class: "muted small", text: t("Saving makes a new revision of the app ({revision} now); an admin can roll it back.", { revision: state.revision }) }),
  ];
}

function confirmPlan() {
  planDialog.showModal();
  const confirm = root.querySelector("[data-testid=report-confirm]");
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
    return;
  }
  const report = m.compact(state.report);
  const key = report.key;
  const url = `/api/apps/${app.key}/reports/${encodeURIComponent(key)}`;
  const headers = { "If-Match": `"${state.revision}"` };
  setStatus(t("Checking…"));
  let plan;
  try {
    ({ data: plan } = await api(`${url}?dry_run=true`, { method: "PUT", body: report, headers }));
  } catch (error) {
    return failed(error);
  }
  setStatus("");
  root.querySelector("[data-plan-body]").replaceChildren(...planBody(plan));
  if (!(await confirmPlan())) {
    setStatus(t("Not saved."));
    return;
  }
  setStatus(t("Saving…"));
  try {
    const { data: result } = await api(url, { method: "PUT", body: report, headers });
    state.revision = result.revision;
    savedText = JSON.stringify(report);
    if (state.isNew) {
      state.isNew = false;
      root.querySelector("[data-testid=report-delete]").hidden = false;
      history.replaceState(null, "", `/designer/${app.key}/reports/${encodeURIComponent(key)}${key === "new" ? "?existing=1" : ""}`);
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
    setStatus(t("Someone saved this app meanwhile; reload the page to see their changes (yours are lost on reload)."), "error");
  } else {
    setStatus(error.message, "error");
  }
}

async function deleteReport() {
  if (state.isNew) return;
  const key = state.report.key;
  if (!window.confirm(t("Delete the report {report}? An admin can bring it back by rolling the app back.", { report: key }))) return;
  setStatus(t("Deleting…"));
  try {
    await api(`/api/apps/${app.key}/reports/${encodeURIComponent(key)}`, { method: "DELETE", headers: { "If-Match": `"${state.revision}"` } });
    savedText = JSON.stringify(m.compact(state.report)); // nothing left unsaved to guard
    window.location.assign(`/designer/${app.key}/reports`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }]);
      setStatus(t("Not deleted: a dashboard shows this report."), "error");
    } else failed(error);
  }
}

// -- keyboard and the unsaved-changes guard --------------------------------------------------

root.querySelector("[data-testid=report-undo]").addEventListener("click", undo);
root.querySelector("[data-testid=report-redo]").addEventListener("click", redo);
root.querySelector("[data-testid=report-save]").addEventListener("click", save);
root.querySelector("[data-testid=report-delete]").addEventListener("click", deleteReport);
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey)) return;
  const key = event.key.toLowerCase();
  const typing = event.target.matches?.("input, textarea");
  if (key === "s") {
    event.preventDefault();
    save();
  } else if (key === "z" && !event.shiftKey && !typing) {
    event.preventDefault();
    undo();
  } else if (((key === "z" && event.shiftKey) || key === "y") && !typing) {
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
root.dataset.ready = "true"; // the buttons have their handlers (tests wait for this)
