// The dashboard editor's model: the dashboard is kept exactly as the app's JSON writes it
// (docs/reports.md, "Saved reports, dashboards"), and these pure helpers read and change it.
// No DOM; JSON pointers come from the rule editor's model.
//
// Invariants:
// - `compact(board)` is what is saved: label texts left empty are left out, a filter's map
//   holds only the forms given a field, every tile has its width (1-12) written out, so a
//   dashboard rebuilt in the editor equals the shipped one, key for key;
// - a filter narrows a tile when its field for the tile's report's form is a field of that
//   form (or a record date such as created_at): the dashboard page's own test
//   (platform/reports/tiles.py `applies`);
// - a tile's chart override exists only while it differs from its report's chart.

export { escapePart, pointer, splitPointer, getAt, setAt } from "./rule-editor-model.js";

export const COLUMNS = 12;
export const DEFAULT_WIDTH = 6;
export const PERIODS = ["day", "week", "month", "quarter", "year"];
export const FILTER_TYPES = ["date_range", "select"];
export const SYSTEM_FIELDS = ["created_at", "updated_at", "created_by", "updated_by"];
const KEY = /^[a-z][a-z0-9_]{0,62}$/;

/** A new, empty dashboard with a label box per app locale. */
export function emptyBoard(locales) {
  return { key: "", label: Object.fromEntries(locales.map((l) => [l, ""])), filters: [], items: [] };
}

/** A key the format accepts (lower-case letters, digits and _, starting with a letter)? */
export function keyProblem(key) {
  return !KEY.test(key || "");
}

export function clampWidth(width) {
  const number = Number(width);
  if (!Number.isFinite(number)) return DEFAULT_WIDTH;
  return Math.max(1, Math.min(COLUMNS, Math.round(number)));
}

function compactLabel(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value === "" ? undefined : value;
  const out = {};
  for (const [locale, text] of Object.entries(value)) if (text !== "" && text != null) out[locale] = text;
  return Object.keys(out).length ? out : undefined;
}

function compactFilter(filter) {
  const out = {};
  for (const [name, value] of Object.entries(filter)) {
    if (name === "label") {
      const label = compactLabel(value);
      if (label !== undefined) out.label = label;
    } else if (name === "field" && value && typeof value === "object") {
      out.field = Object.fromEntries(Object.entries(value).filter(([, f]) => f !== "" && f != null));
    } else if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The dashboard as it is saved. */
export function compact(board) {
  const out = {};
  for (const [name, value] of Object.entries(board)) {
    if (name === "label" || name === "description") {
      const text = compactLabel(value);
      if (text !== undefined) out[name] = text;
    } else if (name === "filters") {
      if (value?.length) out.filters = value.map(compactFilter);
    } else if (name === "items") {
      out.items = (value ?? []).map((item) => ({ ...item, width: clampWidth(item.width ?? DEFAULT_WIDTH) }));
    } else if (value !== undefined && value !== "") out[name] = value;
  }
  return out;
}

// -- tiles ------------------------------------------------------------------------------------

export function newItem(report) {
  return { report, width: DEFAULT_WIDTH };
}

/** Move the tile at `from` to `to` (both indexes in the list as it is). */
export function moveItem(items, from, to) {
  const target = Math.max(0, Math.min(items.length - 1, to));
  if (from === target) return false;
  const [item] = items.splice(from, 1);
  items.splice(target, 0, item);
  return true;
}

/** Set a tile's width (snapped to whole columns, 1-12); whether it changed. */
export function resizeItem(item, width) {
  const next = clampWidth(width);
  if ((item.width ?? DEFAULT_WIDTH) === next && item.width !== undefined) return false;
  item.width = next;
  return true;
}

/** The width a pointer at `x` gives a tile starting at `left` on a grid of `columnWidth`
 * columns separated by `gap`: the nearest whole number of columns, 1-12. */
export function widthAt(x, left, columnWidth, gap) {
  const span = (x - left + gap) / (columnWidth + gap);
  return clampWidth(Math.round(span));
}

/** The chart a tile draws: its own override, else its report's. */
export function chartOf(item, report) {
  return item.chart ?? report?.chart ?? null;
}

/** Change a tile's KPI settings (period, period_field); the override goes away once it says
 * what the report says. */
export function setKpi(item, report, changes) {
  const base = report?.chart ?? { type: "kpi" };
  const next = { ...base, ...(item.chart ?? {}), ...changes };
  if (sameJson(next, base)) delete item.chart;
  else item.chart = next;
}

function sameJson(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return false;
  return true;
}

// -- filters ----------------------------------------------------------------------------------

export function newFilter(type, locales) {
  return { key: "", type, label: Object.fromEntries(locales.map((l) => [l, ""])), field: {} };
}

/** The forms of the board's tiles, in tile order, each once. */
export function formsOfTiles(board, reportsByKey) {
  const seen = [];
  for (const item of board.items ?? []) {
    const form = reportsByKey[item.report]?.form;
    if (form && !seen.includes(form)) seen.push(form);
  }
  return seen;
}

/** The field `filter` narrows on `form` (undefined when none). */
export function fieldOf(filter, form) {
  if (typeof filter.field === "string") return filter.field;
  return filter.field?.[form] || undefined;
}

/** Whether `filter` narrows a report of `form` (`info`: the form's field keys). */
export function applies(filter, form, info) {
  const field = fieldOf(filter, form);
  if (!field || !info) return false;
  return info.keys.includes(field) || SYSTEM_FIELDS.includes(field);
}

/** Wire `filter` to `field` on `form` (or unwire it: ""). A filter naming one field for every
 * form becomes a map first, over the forms that have it. */
export function setFieldOf(filter, form, field, forms) {
  if (typeof filter.field === "string") {
    const one = filter.field;
    filter.field = {};
    for (const [key, info] of Object.entries(forms)) {
      if (info.keys.includes(one) || SYSTEM_FIELDS.includes(one)) filter.field[key] = one;
    }
  }
  filter.field = filter.field && typeof filter.field === "object" ? filter.field : {};
  if (field) filter.field[form] = field;
  else delete filter.field[form];
}

/** The fields of a form a filter of `type` may use: dates for a period, fields with
 * options or links for a choice. */
export function choicesFor(type, info) {
  if (!info) return [];
  return type === "date_range" ? info.dates : info.choices;
}
