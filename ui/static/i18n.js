// The page's language and its message catalog (rendered into the page by the server, see
// platform/i18n.py): t("Save") gives the message in the page language, English when the
// catalog has none; t("{n} records", {n: 3}) fills in values after translating.

const holder = document.getElementById("i18n-catalog");
const messages = holder ? JSON.parse(holder.textContent) : {};

export const locale = document.documentElement.lang || "en";

export function t(message, values) {
  const text = Object.hasOwn(messages, message) ? messages[message] : message;
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(values, name) ? String(values[name]) : whole,
  );
}

// An app label: a string, or {"en": ..., "zh-CN": ...} (the app definition's labels).
export function label(value, fallback = "") {
  if (value == null) return fallback;
  if (typeof value === "string") return value;
  return value[locale] ?? value.en ?? Object.values(value)[0] ?? fallback;
}
