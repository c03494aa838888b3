// Values in generated forms (form.js and its controls): labels, emptiness, copies, sizes,
// and datetimes between their stored UTC form and the reader's local time.

import { label, t } from "/static/i18n.js";

let counter = 0;

/** A number for element ids, unique on the page. */
export function nextId() {
  counter += 1;
  return counter;
}

function humanize(key) {
  const words = String(key).replace(/_+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : key;
}

export function fieldLabel(field) {
  return label(field.label, humanize(field.key));
}

export function isEmpty(value) {
  return value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length);
}

export function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function humanSize(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

// Stored datetimes are UTC "YYYY-MM-DDTHH:MM:SSZ"; a datetime-local input shows local time.
export function toLocalInput(value) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function fromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function showDateTime(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  return date.toLocaleString(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

export function showComputed(field, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    return value.toLocaleString(document.documentElement.lang || undefined, { maximumFractionDigits: 2 });
  }
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  return String(value);
}
