// The rule editor's model: the rule is kept exactly as the app's JSON writes it (docs/rules.md),
// and these pure helpers read and change it. No DOM, no imports.
//
// Invariants:
// - `compact(rule)` is what is saved: defaults the format fills in by itself (`enabled: true`,
//   `priority: 0`, `if: true`, `offset: "P0D"`, `late: "run"`, empty `fields`) are left out, so a
//   rule rebuilt in the editor equals the shipped one, key for key;
// - every control carries the JSON pointer of what it edits (`data-path`), which is also where
//   the server's 422 points, so an error is shown at its control.

export const KINDS = ["record", "schedule", "date"];
export const EVENTS = ["created", "updated", "deleted"];
export const ACTION_TYPES = ["set", "reject", "create_record", "update_records", "create_task", "notify", "webhook"];
export const CHANNELS = ["in_app", "email", "sms_gateway"];
export const RECIPIENT_KINDS = ["role", "field", "user", "address"];

const DEFAULTS = { enabled: true, priority: 0 };

/** The kind of a trigger, from its keys (as the engine tells them apart). */
export function triggerKind(on) {
  if (!on || typeof on !== "object") return "record";
  if ("event" in on) return "record";
  if ("field" in on) return "date";
  return "schedule";
}

function isEmptyValue(value) {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return false;
}

function compactTrigger(on) {
  const out = {};
  for (const [key, value] of Object.entries(on || {})) {
    if (key === "to") {
      if (value !== undefined) out[key] = value;
      continue;
    }
    if (isEmptyValue(value)) continue;
    if (key === "offset" && value === "P0D") continue;
    if (key === "late" && value === "run") continue;
    if (key === "every_year" && value === false) continue;
    out[key] = value;
  }
  if (out.to !== undefined && !out.fields) delete out.to;
  return out;
}

function compactAction(action) {
  const out = {};
  for (const [key, value] of Object.entries(action)) {
    if (value === undefined || value === null || value === "") continue;
    if (key === "headers" && value && typeof value === "object" && !Object.keys(value).length) continue;
    if (key === "method" && value === "POST" && action.type === "webhook") continue;
    out[key] = value;
  }
  return out;
}

/** The rule as it is saved: defaults and empty optional values left out. */
export function compact(rule) {
  const out = {};
  for (const [key, value] of Object.entries(rule)) {
    if (key in DEFAULTS && value === DEFAULTS[key]) continue;
    if (key === "if" && (value === true || value === undefined)) continue;
    if (key === "label" && isEmptyValue(value)) continue;
    if (key === "on") out.on = compactTrigger(value);
    else if (key === "then") out.then = (value || []).map(compactAction);
    else out[key] = value;
  }
  return out;
}

/** A fresh trigger of `kind` on `form`. */
export function newTrigger(kind, form, fields = []) {
  if (kind === "schedule") return { form, at: "09:00" };
  if (kind === "date") {
    const date = fields.find((f) => f.type === "date" || f.type === "datetime");
    return { form, field: date ? date.key : "" };
  }
  return { form, event: "created" };
}

/** A text in every locale of the app, empty. */
export function localeMap(locales, text = "") {
  return Object.fromEntries(locales.map((locale) => [locale, text]));
}

/** A new action of `type`, ready to fill in. */
export function newAction(type, { locales, form, roles }) {
  const firstRole = roles[0]?.key;
  switch (type) {
    case "set":
      return { type, values: {} };
    case "reject":
      return { type, message: localeMap(locales) };
    case "create_record":
      return { type, form, values: {} };
    case "update_records":
      return { type, form, filter: { "==": [{ var: "id" }, { var: "record.id" }] }, values: {} };
    case "create_task":
      return { type, role: firstRole, title: localeMap(locales) };
    case "notify":
      return { type, channel: "in_app", recipients: [{ role: firstRole }], template: localeMap(locales) };
    case "webhook":
      return { type, url: "https://" };
    default:
      return { type };
  }
}

// -- JSON pointers --------------------------------------------------------------------------

export function escapePart(part) {
  return String(part).replace(/~/g, "~0").replace(/\//g, "~1");
}

export function pointer(...parts) {
  return parts.map((part) => "/" + escapePart(part)).join("");
}

export function splitPointer(path) {
  return String(path || "")
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The value at `path` in `doc` (undefined when absent). */
export function getAt(doc, path) {
  let node = doc;
  for (const part of splitPointer(path)) {
    if (node === null || typeof node !== "object") return undefined;
    node = node[part];
  }
  return node;
}

/** Set (or, with undefined, remove) the value at `path`, creating objects on the way. */
export function setAt(doc, path, value) {
  const parts = splitPointer(path);
  const last = parts.pop();
  let node = doc;
  for (const part of parts) {
    if (node[part] === null || typeof node[part] !== "object") node[part] = {};
    node = node[part];
  }
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else {
    node[last] = value;
  }
}

// -- values typed into text boxes -----------------------------------------------------------

/** A typed value: JSON when it reads as JSON (numbers, true, {"var": ...}), else the text. */
export function parseValue(text) {
  const trimmed = String(text).trim();
  if (trimmed === "") return "";
  try {
    return JSON.parse(trimmed);
  } catch {
    return String(text);
  }
}

/** How a value shows in a text box: a string as it is, anything else as JSON. */
export function showValue(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Whether a rule key is usable (the format's key pattern). */
export function keyProblem(key) {
  if (!key) return "required";
  return /^[a-z][a-z0-9_]{0,62}$/.test(key) ? null : "pattern";
}

/** The variables a template or an expression may name, for the picker: the trigger form's
 * fields, and one hop through each of its relations (`record.patient.name`). */
export function variables(forms, formKey) {
  const byKey = Object.fromEntries(forms.map((f) => [f.key, f]));
  const form = byKey[formKey];
  if (!form) return [];
  const out = [{ name: "record.id", label: "id" }];
  for (const field of form.fields) {
    if (field.type === "table") continue;
    out.push({ name: `record.${field.key}`, label: field.label });
    const target = field.target && byKey[field.target];
    if (!target) continue;
    for (const inner of target.fields) {
      if (inner.type === "table" || inner.type === "relation") continue;
      out.push({ name: `record.${field.key}.${inner.key}`, label: `${field.label} › ${inner.label}` });
    }
  }
  return out;
}
