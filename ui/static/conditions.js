// The condition builder's model: rows of field · operator · value, joined by "all" or "any",
// to JsonLogic and back. One builder for two places, each with its own set of operators:
//
// - VISIBILITY, the designer's "Show this field" (`visible_if`): run by the evaluator in the
//   browser (logic.js) and on the server, so any JsonLogic operator may be used;
// - FILTER, the list page's filter bar: the list API compiles the filter to SQL, so it offers
//   only operators of the SQL subset (docs/filters.md) for each field type.
//
//   buildCondition({join: "all", rows: [{field: "kind", op: "==", value: "b"}]})
//     // {"==": [{"var": "kind"}, "b"]}
//   parseCondition({"in": ["vip", {"var": "tags"}]}, FILTER, (key) => types[key])
//     // {join: "all", rows: [{field: "tags", op: "contains", value: "vip"}]}
//
// A rule the builder cannot show (another operator, one not offered for the field's type, an
// unknown field, nesting) parses to null: the caller keeps it as it is, never simplified.
// Pure functions, no DOM and no imports (tests/ui/conditions.test.mjs runs this on Node).
// Operator labels are messages: callers translate them with t().

const variable = (field) => ({ var: field });

/** Every operator a row can have: the JsonLogic it writes and whether it takes a value. */
export const OPERATORS = {
  "==": { label: "is", value: true, rule: (f, v) => ({ "==": [variable(f), v] }) },
  "!=": { label: "is not", value: true, rule: (f, v) => ({ "!=": [variable(f), v] }) },
  ">": { label: "is greater than", value: true, rule: (f, v) => ({ ">": [variable(f), v] }) },
  ">=": { label: "is at least", value: true, rule: (f, v) => ({ ">=": [variable(f), v] }) },
  "<": { label: "is less than", value: true, rule: (f, v) => ({ "<": [variable(f), v] }) },
  "<=": { label: "is at most", value: true, rule: (f, v) => ({ "<=": [variable(f), v] }) },
  // a text's substring, or one option of a multiple choice
  contains: { label: "contains", value: true, rule: (f, v) => ({ in: [v, variable(f)] }) },
  yes: { label: "is yes", value: false, rule: (f) => ({ "==": [variable(f), true] }) },
  no: { label: "is no", value: false, rule: (f) => ({ "==": [variable(f), false] }) },
  empty: { label: "is empty", value: false, rule: (f) => ({ is_empty: [variable(f)] }) },
  filled: { label: "is filled in", value: false, rule: (f) => ({ "!": [{ is_empty: [variable(f)] }] }) },
};

export function needsValue(op) {
  return Boolean(OPERATORS[op]?.value);
}

const ORDERED = ["==", "!=", ">", ">=", "<", "<=", "empty", "filled"];
const EQUALITY = ["==", "!=", "empty", "filled"];

/** The designer's `visible_if`: the evaluator's whole language is available. */
export const VISIBILITY = {
  operators(type) {
    if (type === "multiselect") return ["contains", "empty", "filled"];
    if (["boolean", "select", "relation", "email", "phone", "url", "file", "image", "signature", "table"].includes(type)) {
      return EQUALITY;
    }
    if (["number", "integer", "rating", "date", "datetime", "time", "computed"].includes(type)) return ORDERED;
    return ["==", "!=", "contains", "empty", "filled"];
  },
  label: (op) => OPERATORS[op].label,
};

// The list's filter bar, per kind of field: only what compiles to SQL (docs/filters.md,
// "Per-type semantics": no ordering of options, no `==` on a multiple choice, a datetime is
// compared as a range).
const FILTER_KIND = { textarea: "text", richtext: "text", email: "text", phone: "text", url: "text", integer: "number", rating: "number" };
const FILTER_OPERATORS = {
  text: ["contains", "==", "!=", "empty", "filled"],
  number: ["==", "!=", "<", "<=", ">", ">=", "empty", "filled"],
  date: ["==", "<", ">=", "empty", "filled"],
  datetime: ["<", ">=", "empty", "filled"],
  time: ["==", "<", ">=", "empty", "filled"],
  select: EQUALITY,
  multiselect: ["contains", "empty", "filled"],
  boolean: ["yes", "no"],
  relation: EQUALITY,
  // people: one member (a user id), several (a list of ids, "has"), a department
  user: EQUALITY,
  users: ["contains", "empty", "filled"],
  department: EQUALITY,
};
const FILTER_LABELS = { "<": "<", "<=": "≤", ">": ">", ">=": "≥", filled: "is not empty" };
const TIME_LABELS = { "<": "is before", ">=": "is on or after" };

/** What the filter bar treats a field type as ("text" for any it does not know). */
export function filterKind(type) {
  return FILTER_KIND[type] || (FILTER_OPERATORS[type] ? type : "text");
}

/** The list page's filter bar: the SQL subset of the list API. */
export const FILTER = {
  operators: (type) => FILTER_OPERATORS[filterKind(type)],
  label(op, type) {
    const kind = filterKind(type);
    if (["date", "datetime", "time"].includes(kind) && TIME_LABELS[op]) return TIME_LABELS[op];
    if ((kind === "multiselect" || kind === "users") && op === "contains") return "has";
    return FILTER_LABELS[op] || OPERATORS[op].label;
  },
};

// -- rows to JsonLogic -----------------------------------------------------------------------

/** JsonLogic for one row {field, op, value}. */
export function rowRule({ field, op, value }) {
  return OPERATORS[op].rule(field, value);
}

/** JsonLogic for the rows that name a field and an operator (undefined when none do). */
export function buildCondition({ join, rows }) {
  const complete = rows.filter((row) => row.field && OPERATORS[row.op]);
  if (!complete.length) return undefined;
  if (complete.length === 1) return rowRule(complete[0]);
  return { [join === "any" ? "or" : "and"]: complete.map(rowRule) };
}

// -- JsonLogic to rows -----------------------------------------------------------------------

function varName(node) {
  if (node && typeof node === "object" && !Array.isArray(node) && Object.keys(node).length === 1 && "var" in node) {
    const name = Array.isArray(node.var) ? node.var[0] : node.var;
    return typeof name === "string" && name ? name : null;
  }
  return null;
}

function isLiteral(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

// One comparison as {field, op, value} with op one of == != > >= < <= contains empty filled.
function single(rule) {
  if (!rule || typeof rule !== "object" || Array.isArray(rule)) return null;
  const ops = Object.keys(rule);
  if (ops.length !== 1) return null;
  const op = ops[0];
  let args = rule[op];
  if (!Array.isArray(args)) args = [args];
  if (["==", "!=", ">", ">=", "<", "<=", "===", "!=="].includes(op) && args.length === 2) {
    const field = varName(args[0]);
    if (field && isLiteral(args[1])) {
      return { field, op: op === "===" ? "==" : op === "!==" ? "!=" : op, value: args[1] };
    }
    return null;
  }
  if (op === "in" && args.length === 2) {
    const field = varName(args[1]);
    return field && isLiteral(args[0]) ? { field, op: "contains", value: args[0] } : null;
  }
  if (op === "is_empty" && args.length === 1) {
    const field = varName(args[0]);
    return field ? { field, op: "empty", value: null } : null;
  }
  if (op === "!" && args.length === 1) {
    const inner = single(args[0]);
    return inner && inner.op === "empty" ? { ...inner, op: "filled" } : null;
  }
  return null;
}

// The row as `profile` offers it for a field of `type`, or null.
function offered(row, profile, type) {
  const ops = profile.operators(type);
  if (ops.includes(row.op)) return row;
  if (row.op === "==" && typeof row.value === "boolean") {
    const op = row.value ? "yes" : "no";
    if (ops.includes(op)) return { field: row.field, op, value: null };
  }
  return null;
}

/**
 * {join: "all" | "any", rows: [{field, op, value}]} for a rule the builder can show with
 * `profile`, else null; no rule at all is no rows. `typeOf(key)` gives a field's type, or
 * undefined for a field the builder does not offer.
 */
export function parseCondition(rule, profile, typeOf) {
  if (rule === undefined || rule === null) return { join: "all", rows: [] };
  if (!rule || typeof rule !== "object" || Array.isArray(rule)) return null;
  const ops = Object.keys(rule);
  const joined = ops.length === 1 && (ops[0] === "and" || ops[0] === "or") && Array.isArray(rule[ops[0]]);
  const parts = joined ? rule[ops[0]] : [rule];
  if (!parts.length) return null;
  const rows = [];
  for (const part of parts) {
    const row = single(part);
    const type = row ? typeOf(row.field) : undefined;
    const shown = type === undefined ? null : offered(row, profile, type);
    if (!shown) return null;
    rows.push(shown);
  }
  return { join: joined && ops[0] === "or" ? "any" : "all", rows };
}

/** A value typed into the designer's builder, as a field of `type` stores it. */
export function literal(type, text) {
  if (type === "number" || type === "integer" || type === "rating" || type === "computed") {
    if (String(text).trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
    return text;
  }
  if (type === "boolean") return text === true || text === "true";
  return text;
}
