// The report builder's model: the report is kept exactly as the app's JSON writes it
// (docs/reports.md, "Saved reports"), and these pure helpers read and change it. No DOM.
//
// Invariants:
// - `compact(report)` is what is saved and previewed: empty optional parts (no columns, a
//   label with no text, the default sort, totals on) are left out, so a report rebuilt in the
//   builder equals the shipped one, key for key;
// - a measure's key is what other parts name (ratios, differences, sort, top-N, the chart):
//   `renameMeasure` changes every reference with it, `removeMeasure` drops the ones that
//   would dangle;
// - a field path is a field of the report's form (`doctor`), a record column (`created_at`)
//   or one hop through a relation (`visit.visit_type`), as the pivot spec writes it.

import { getAt, setAt, escapePart, pointer, splitPointer } from "/static/rule-editor-model.js";

export { getAt, setAt, escapePart, pointer, splitPointer };

export const BUCKETS = ["day", "week", "month", "quarter", "year", "weekday", "hour"];
export const FIELD_OPS = ["count", "count_distinct", "sum", "avg", "min", "max", "median", "percentile", "stddev"];
export const DERIVED_OPS = ["ratio", "difference", "percent_of_total", "period_over_period", "running_total", "rank", "moving_average", "cumulative_percent"];
/** Derived measures read down the rows: nothing else may be computed from or sorted by them. */
export const SEQUENCE_OPS = ["running_total", "rank", "moving_average", "cumulative_percent"];
/** How a period-over-period value compares, and with which period. */
export const COMPARES = ["percent_change", "difference", "previous"];
export const OFFSETS = ["period", "year"];
export const WEEK_STARTS = ["monday", "sunday", "saturday"];
/** Comparisons a condition on the values (`having`) is built from. */
export const HAVING_OPS = [">", ">=", "<", "<=", "==", "!="];
/** Buckets that are periods one after another: their empty ones can be filled in. */
export const FILLABLE = ["day", "week", "month", "quarter", "year"];
export const CHART_TYPES = ["bar", "stacked_bar", "line", "pie", "donut", "funnel", "kpi"];
export const PERIODS = ["day", "week", "month", "quarter", "year"];
export const WITHIN = ["all", "row", "column"];

const NUMERIC = new Set(["number", "integer", "rating", "computed"]);
const TIMES = new Set(["date", "datetime"]);
const ORDERED = new Set(["number", "integer", "rating", "computed", "date", "datetime", "time", "text"]);

/** Whether a value is "nothing" for a saved report (left out by `compact`). */
function blank(value) {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return false;
}

/** A label as saved: a map with its empty texts left out, or undefined when none is left. */
export function compactLabel(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value.trim() === "" ? undefined : value;
  const kept = Object.fromEntries(Object.entries(value).filter(([, text]) => !blank(text) && String(text).trim() !== ""));
  return Object.keys(kept).length ? kept : undefined;
}

function compactObject(object, labels = ["label"]) {
  const out = {};
  for (const [key, value] of Object.entries(object)) {
    const kept = labels.includes(key) ? compactLabel(value) : value;
    if (blank(kept)) continue;
    out[key] = kept;
  }
  return out;
}

/** The report as it is saved: empty optional parts and defaults left out. */
export function compact(report) {
  const out = {};
  for (const [key, value] of Object.entries(report)) {
    if (key === "label" || key === "description") {
      const kept = compactLabel(value);
      if (kept !== undefined) out[key] = kept;
    } else if (key === "rows" || key === "columns") {
      const kept = (value ?? []).map((d) => compactObject(d));
      if (kept.length) out[key] = kept;
    } else if (key === "measures") {
      out.measures = (value ?? []).map((measure) => compactObject(measure));
    } else if (key === "chart") {
      if (value && value.type) out.chart = compactObject(value, ["x_label", "y_label"]);
    } else if (key === "totals") {
      if (value === false) out.totals = false;
    } else if (key === "subtotals") {
      if (value === true) out.subtotals = true;
    } else if (key === "sort" || key === "column_sort") {
      if (value && !(value.by === "label" && value.direction !== "desc")) out[key] = value;
    } else if (key === "week_start") {
      if (value && value !== "monday") out.week_start = value;
    } else if (key === "fiscal_year_start") {
      if (value && value !== 1) out.fiscal_year_start = value;
    } else if (!blank(value)) {
      out[key] = value;
    }
  }
  return out;
}

// -- fields ---------------------------------------------------------------------------------

/** Field metadata by path: the form's fields, the record columns and one hop through each
 * relation (`{key: "visit.visit_type", label: "Visit › Visit type", type, hop: true}`). */
export function fieldIndex(forms, system, formKey) {
  const byKey = Object.fromEntries(forms.map((f) => [f.key, f]));
  const form = byKey[formKey];
  const out = new Map();
  if (!form) return out;
  for (const field of form.fields) out.set(field.key, field);
  for (const field of system) out.set(field.key, { ...field, system: true });
  for (const field of form.fields) {
    const target = field.target && byKey[field.target];
    if (!target) continue;
    for (const inner of target.fields) {
      if (inner.type === "multiselect") continue; // a related multiselect cannot be a dimension
      const key = `${field.key}.${inner.key}`;
      out.set(key, { ...inner, key, label: `${field.label} › ${inner.label}`, hop: field.key });
    }
  }
  return out;
}

export const isTime = (meta) => Boolean(meta) && TIMES.has(meta.type);
export const isNumeric = (meta) => Boolean(meta) && NUMERIC.has(meta.type);

/** The buckets a dimension on `meta` may have (none for a field that is not a date). */
export function bucketsFor(meta) {
  if (!isTime(meta)) return [];
  return meta.type === "date" ? BUCKETS.filter((b) => b !== "hour") : BUCKETS;
}

/** Whether a field measure of `op` may read `meta`. */
export function opAllows(op, meta) {
  if (op === "count") return false; // a count counts records, of no field
  if (!meta) return false;
  if (op === "sum" || op === "avg") return isNumeric(meta) || meta.type === "boolean";
  if (op === "median" || op === "percentile" || op === "stddev") return isNumeric(meta);
  if (op === "min" || op === "max") return ORDERED.has(meta.type);
  return true;
}

// -- building -------------------------------------------------------------------------------

/** A new dimension on `path` (a month for a date, as a pivot table starts it). */
export function newDimension(path, meta) {
  const dimension = { field: path };
  if (isTime(meta)) dimension.bucket = "month";
  return dimension;
}

/** A key not yet taken by a measure of `measures`, from `base`. */
export function freeKey(measures, base) {
  const taken = new Set(measures.map((m) => m.key));
  const stem = String(base).toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z]+/, "") || "value";
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n += 1) if (!taken.has(`${stem}_${n}`)) return `${stem}_${n}`;
}

/** A new value: the number of records (no path), or a sum of a number field, or a count. */
export function newMeasure(measures, path, meta) {
  if (!path) return { key: freeKey(measures, "count"), op: "count" };
  // a count counts records; of a field, what can be counted is its distinct values
  const op = isNumeric(meta) ? "sum" : "count_distinct";
  return { key: freeKey(measures, `${op}_${path.replace(/\./g, "_")}`), op, field: path };
}

/** A new calculated value over the values already there (a ratio of the first two). */
export function newDerived(measures) {
  const keys = measures.filter((m) => !DERIVED_OPS.includes(m.op)).map((m) => m.key);
  return { key: freeKey(measures, "ratio"), op: "ratio", numerator: keys[0] ?? "", denominator: keys[1] ?? keys[0] ?? "" };
}

/** `measure` turned into `op`: the parts the new op does not take are dropped, the ones it
 * needs get a first choice among `others` (the keys of the other values). */
export function withOp(measure, op, others) {
  const out = { key: measure.key, op };
  if (measure.label !== undefined) out.label = measure.label;
  if (FIELD_OPS.includes(op)) {
    if (measure.field && op !== "count") out.field = measure.field;
    if (measure.filter !== undefined) out.filter = measure.filter;
    if (op === "percentile") out.p = measure.p ?? 0.9;
  } else if (op === "ratio") {
    out.numerator = measure.numerator ?? measure.minuend ?? others[0] ?? "";
    out.denominator = measure.denominator ?? measure.subtrahend ?? others[1] ?? others[0] ?? "";
  } else if (op === "difference") {
    out.minuend = measure.minuend ?? measure.numerator ?? others[0] ?? "";
    out.subtrahend = measure.subtrahend ?? measure.denominator ?? others[1] ?? others[0] ?? "";
  } else if (op === "percent_of_total" || op === "period_over_period" || SEQUENCE_OPS.includes(op)) {
    out.of = measure.of ?? others[0] ?? "";
  }
  if (op === "moving_average") out.window = measure.window ?? 3;
  if (op === "period_over_period") {
    for (const part of ["compare", "offset", "to_date"]) if (measure[part] !== undefined) out[part] = measure[part];
  }
  const scaled = (DERIVED_OPS.includes(op) && !SEQUENCE_OPS.includes(op)) || op === "cumulative_percent";
  if (scaled && measure.scale !== undefined) out.scale = measure.scale;
  return out;
}

// -- conditions on the values (having) -------------------------------------------------------

/** A `having` as rows `{measure, op, value}` joined by "all", or null when it is not that
 * simple (shown as JSON then). */
export function parseHaving(rule) {
  if (rule === undefined || rule === null) return [];
  const parts = rule && typeof rule === "object" && Array.isArray(rule.and) && Object.keys(rule).length === 1 ? rule.and : [rule];
  const rows = [];
  for (const part of parts) {
    const keys = part && typeof part === "object" && !Array.isArray(part) ? Object.keys(part) : [];
    if (keys.length !== 1 || !HAVING_OPS.includes(keys[0])) return null;
    const args = part[keys[0]];
    if (!Array.isArray(args) || args.length !== 2) return null;
    const [left, right] = args;
    if (!left || typeof left.var !== "string" || Object.keys(left).length !== 1) return null;
    if (typeof right !== "number") return null;
    rows.push({ measure: left.var, op: keys[0], value: right });
  }
  return rows;
}

/** The `having` of rows `{measure, op, value}` (undefined for none). */
export function buildHaving(rows) {
  const parts = rows.map((r) => ({ [r.op]: [{ var: r.measure }, r.value] }));
  if (!parts.length) return undefined;
  return parts.length === 1 ? parts[0] : { and: parts };
}

/** The measures a sort, a ranking or a condition on the values may read. */
export function readableMeasures(measures) {
  return (measures ?? []).filter((x) => !SEQUENCE_OPS.includes(x.op));
}

const REFERENCES = ["numerator", "denominator", "minuend", "subtrahend", "of"];

/** Every reference to the measure `from` made to name `to` (ratios, sort, top-N, chart). */
export function renameMeasure(report, from, to) {
  if (!from || from === to) return;
  for (const measure of report.measures ?? []) {
    for (const part of REFERENCES) if (measure[part] === from) measure[part] = to;
  }
  if (report.sort?.by === from) report.sort.by = to;
  if (report.column_sort?.by === from) report.column_sort.by = to;
  if (report.top?.by === from) report.top.by = to;
  if (report.top_per_group?.by === from) report.top_per_group.by = to;
  const rows = parseHaving(report.having);
  if (rows && rows.some((r) => r.measure === from)) {
    report.having = buildHaving(rows.map((r) => (r.measure === from ? { ...r, measure: to } : r)));
  }
  if (report.chart?.measure === from) report.chart.measure = to;
}

/** Remove the measure at `index` and the references to it that would dangle. */
export function removeMeasure(report, index) {
  const [gone] = report.measures.splice(index, 1);
  if (!gone) return;
  if (report.sort?.by === gone.key) delete report.sort;
  if (report.column_sort?.by === gone.key) delete report.column_sort;
  if (report.top?.by === gone.key) delete report.top;
  if (report.top_per_group?.by === gone.key) delete report.top_per_group;
  const rows = parseHaving(report.having);
  if (rows && rows.some((r) => r.measure === gone.key)) {
    report.having = buildHaving(rows.filter((r) => r.measure !== gone.key));
    if (report.having === undefined) delete report.having;
  }
  if (report.chart?.measure === gone.key) delete report.chart.measure;
}

/** Move the item at `index` of `list` by `step` (-1 up, +1 down); false when it cannot. */
export function move(list, index, step) {
  const to = index + step;
  if (!list || to < 0 || to >= list.length) return false;
  list.splice(to, 0, list.splice(index, 1)[0]);
  return true;
}

/** Whether a report key is usable (the format's key pattern). */
export function keyProblem(key) {
  if (!key) return "required";
  return /^[a-z][a-z0-9_]{0,62}$/.test(key) ? null : "pattern";
}

/** Two JSON values equal modulo the order of object keys. */
export function sameJson(a, b) {
  const norm = (v) =>
    Array.isArray(v) ? v.map(norm) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, norm(v[k])])) : v;
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}
