// The form designer's model: what each field type offers, new fields, keys and labels. Pure
// functions, no DOM. (The condition builder's JsonLogic is conditions.js, shared with the list.)
//
// The designer edits the form definition exactly as the app stores it (docs/forms.md), with
// two private markers on each field that never leave the browser: `_uid` (a stable identity
// while keys are renamed) and `_kt` (the key was typed by hand, so the label no longer
// derives it). `serializeForm` strips them.

import { t } from "/static/i18n.js";

export const KEY_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const RESERVED_KEYS = new Set([
  "id", "app", "form", "form_version", "version", "data",
  "created_at", "created_by", "updated_at", "updated_by", "deleted_at",
]);

// What each type is called in the palette, and which attributes it has (engines/forms/fields.py).
const VALUE = { input: true, indexable: true, column: true };
export const TYPES = {
  text: { name: "Text", icon: "Aa", ...VALUE, text: true },
  textarea: { name: "Long text", icon: "¶", ...VALUE, text: true },
  number: { name: "Number", icon: "1.5", ...VALUE, limits: "number" },
  integer: { name: "Whole number", icon: "123", ...VALUE, limits: "integer" },
  boolean: { name: "Yes / no", icon: "y/n", ...VALUE },
  date: { name: "Date", icon: "31", ...VALUE, limits: "date" },
  datetime: { name: "Date and time", icon: "31h", ...VALUE, limits: "datetime" },
  time: { name: "Time", icon: "hh", ...VALUE, limits: "time" },
  select: { name: "Dropdown", icon: "▾", ...VALUE, options: true },
  multiselect: { name: "Multiple choice", icon: "☰", input: true, column: true, options: true, items: true, indexOnly: true },
  email: { name: "Email", icon: "@", ...VALUE },
  phone: { name: "Phone", icon: "☎", ...VALUE },
  url: { name: "Web address", icon: "www", ...VALUE },
  relation: { name: "Link to record", icon: "↗", ...VALUE, relation: true },
  table: { name: "Table", icon: "▦", input: true, table: true },
  file: { name: "File", icon: "doc", input: true, column: true, file: true },
  image: { name: "Image", icon: "img", input: true, column: true, file: true },
  computed: { name: "Formula", icon: "ƒx", indexable: true, column: true, computed: true },
  rating: { name: "Rating", icon: "★", ...VALUE, rating: true },
  signature: { name: "Signature", icon: "✍", input: true, column: true },
  richtext: { name: "Rich text", icon: "𝐁", input: true, column: true, richtext: true },
  autonumber: { name: "Auto number", icon: "No.", indexable: true, people: true },
  user: { name: "Member", icon: "☺", input: true, indexable: true, people: true },
  department: { name: "Department", icon: "⌂", input: true, indexable: true, people: true },
  section: { name: "Section", icon: "§", section: true },
};

export function typeName(type) {
  return t(TYPES[type]?.name ?? type);
}

let uidCounter = 0;
export function uid() {
  uidCounter += 1;
  return `u${uidCounter}`;
}

// Give every field (and table column) of a loaded form its private identity; loaded keys
// count as typed by hand (renaming a saved field is a decision, not a side effect).
export function adoptForm(form) {
  const copy = JSON.parse(JSON.stringify(form));
  copy.fields = Array.isArray(copy.fields) ? copy.fields : [];
  for (const field of copy.fields) adoptField(field, true);
  return copy;
}

function adoptField(field, touched) {
  field._uid = uid();
  field._kt = touched;
  if (Array.isArray(field.fields)) for (const column of field.fields) adoptField(column, touched);
}

// The form as the API takes it: private markers removed, key first.
export function serializeForm(form) {
  return JSON.parse(JSON.stringify(form, (name, value) => (name.startsWith("_") ? undefined : value)));
}

// -- keys ---------------------------------------------------------------------------------

export function slug(text) {
  const ascii = String(text || "")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (!ascii) return "";
  const key = /^[a-z]/.test(ascii) ? ascii : `f_${ascii}`;
  return key.slice(0, 63).replace(/_+$/, "");
}

// A free key: the label's slug (numbered when taken), or `{base}_N` for a label without
// Latin letters (a Chinese label gives field_1, field_2, ...).
export function deriveKey(text, taken, base = "field") {
  const stem = slug(text);
  if (stem && !RESERVED_KEYS.has(stem)) {
    if (!taken.has(stem)) return stem;
    for (let n = 2; ; n += 1) {
      const candidate = `${stem.slice(0, 60)}_${n}`;
      if (!taken.has(candidate)) return candidate;
    }
  }
  for (let n = 1; ; n += 1) {
    const candidate = `${base}_${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

// Why a key cannot be used ("" when it can). `siblings`: keys of the other fields in scope.
export function keyProblem(key, siblings) {
  if (!key) return t("A key is required.");
  if (!KEY_PATTERN.test(key)) {
    return t("Use lower-case letters, digits and _, starting with a letter (at most 63).");
  }
  if (RESERVED_KEYS.has(key)) return t("“{key}” is reserved for the record itself.", { key });
  if (siblings.has(key)) return t("Another field already uses the key “{key}”.", { key });
  return "";
}

// -- labels -------------------------------------------------------------------------------

// A label as text per locale: a plain string belongs to the first locale.
export function labelTexts(value, locales) {
  const texts = {};
  for (const locale of locales) texts[locale] = "";
  if (typeof value === "string") texts[locales[0]] = value;
  else if (value && typeof value === "object") {
    for (const [locale, text] of Object.entries(value)) texts[locale] = String(text ?? "");
  }
  return texts;
}

// Back to the format: one string when only one text is given (locale-neutral), a map when
// several are (the server checks it has every app locale), nothing when none
// (docs/app-format.md, "Labels and locales").
export function labelValue(texts) {
  const given = Object.entries(texts).filter(([, text]) => text.trim() !== "");
  if (!given.length) return undefined;
  if (given.length === 1) return given[0][1];
  return Object.fromEntries(given);
}

// -- new fields ---------------------------------------------------------------------------

export function newField(type, taken, { forms = [], formKey = "", column = false } = {}) {
  const base = type === "section" ? "section" : column ? "column" : "field";
  const field = { key: deriveKey("", taken, base), type, _uid: uid(), _kt: false };
  // one empty option, ready to type into (its key follows the label); no placeholder words
  // that people would have to delete first
  if (TYPES[type]?.options) field.options = [emptyOption()];
  if (type === "relation") {
    const other = forms.find((form) => form.key && form.key !== formKey) || forms[0];
    field.target = other ? other.key : formKey || "";
  }
  if (type === "table") {
    field.fields = [{ key: "column_1", type: "text", _uid: uid(), _kt: false }];
  }
  // a formula starts empty: the designer's formula editor fills it in (formula.js)
  return field;
}

/** A new option: no label yet, its key derived from the label once one is typed (`_vt`). */
export function emptyOption() {
  return { value: "", _vt: false };
}

// -- labels missing in a locale --------------------------------------------------------------

/** Whether a label that has some text lacks it in `locale` (one of the app's `locales`). */
export function lacksLocale(value, locales, locale) {
  if (!locales.includes(locale) || locales.length < 2) return false;
  const texts = labelTexts(value, locales);
  const given = Object.values(texts).some((text) => text.trim() !== "");
  return given && !String(texts[locale] ?? "").trim();
}

/** Fields (and table columns) whose label, or an option's label, lacks `locale`, in form
 * order: [{uid, field}]. Empty when the app does not use `locale` next to another one. */
export function fieldsLacking(form, locales, locale) {
  const found = [];
  const visit = (field) => {
    const options = Array.isArray(field.options) ? field.options : [];
    if (lacksLocale(field.label, locales, locale) || options.some((o) => lacksLocale(o.label, locales, locale))) {
      found.push({ uid: field._uid, field });
    }
    if (Array.isArray(field.fields)) field.fields.forEach(visit);
  };
  (form.fields || []).forEach(visit);
  return found;
}

/** How many labels (form, fields, columns, options) lack `locale`. */
export function countLacking(form, locales, locale) {
  let count = lacksLocale(form.label, locales, locale) ? 1 : 0;
  const visit = (field) => {
    if (lacksLocale(field.label, locales, locale)) count += 1;
    for (const option of Array.isArray(field.options) ? field.options : []) {
      if (lacksLocale(option.label, locales, locale)) count += 1;
    }
    if (Array.isArray(field.fields)) field.fields.forEach(visit);
  };
  (form.fields || []).forEach(visit);
  return count;
}

// Change a field's type, keeping what the new type also has.
export function retype(field, type, context) {
  const fresh = newField(type, new Set([field.key]), context);
  const info = TYPES[type];
  const kept = { key: field.key, type, _uid: field._uid, _kt: field._kt };
  for (const name of ["label", "help", "visible_if"]) if (field[name] !== undefined) kept[name] = field[name];
  if (info.input) for (const name of ["required", "read_only"]) if (field[name]) kept[name] = field[name];
  if (info.indexable && !context.column) for (const name of ["indexed", "unique"]) if (field[name]) kept[name] = field[name];
  if (info.indexOnly && !context.column && field.indexed) kept.indexed = field.indexed;
  if (info.text && TYPES[field.type]?.text) {
    for (const name of ["min_length", "max_length", "pattern", "pattern_message"]) {
      if (field[name] !== undefined) kept[name] = field[name];
    }
  }
  if (info.options) kept.options = field.options?.length ? field.options : fresh.options;
  if (info.relation) kept.target = field.target || fresh.target;
  if (info.table) kept.fields = field.fields?.length ? field.fields : fresh.fields;
  if (info.computed) kept.formula = field.formula || fresh.formula;
  return kept;
}
